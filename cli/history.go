package cli

import (
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deploydb/deploydb"
)

func (a *app) historyCommand() *cobra.Command {
	var f deploydb.DeploymentFilter
	var status string
	cmd := &cobra.Command{
		Use:   "history SERVICE",
		Short: "Show the deployments of a service, newest first",
		Long: `Show the deployments of a service, newest first: what was deployed where,
when, and whether it was verified.`,
		Example: `  deploydb history billing
  deploydb history billing --environment prod --per-page 5`,
		Args: exactArgs("SERVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.Service = args[0]
			f.Status = deploydb.DeploymentStatus(strings.ToUpper(status))
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			list, err := c.Deployments(c.ctx, f)
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return deploymentTable(w, list) })
		},
	}
	deploymentFilterFlags(cmd, &f, &status, false)
	return cmd
}
