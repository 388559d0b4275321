package cli

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/deploydb/deploydb"
)

func (a *app) flowCommand() *cobra.Command {
	cmd := groupCommand("flow", "Read flows: one artifact's journey through a service's pipeline",
		`Read flows. A flow is one artifact travelling through one service's
pipeline, with one deployment per environment; publishing an artifact
starts one flow per service that consumes it.`)
	cmd.Aliases = []string{"flows"}
	cmd.AddCommand(a.flowGetCommand(), a.flowListCommand())
	return cmd
}

func (a *app) flowGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "get ID",
		Short:   "Show one flow and its deployments in pipeline order",
		Example: `  deploydb flow get 3`,
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("flow ID", args[0])
			if err != nil {
				return err
			}
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			f, err := c.Flow(c.ctx, id)
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return flowDetail(w, f) })
		},
	}
}

func (a *app) flowListCommand() *cobra.Command {
	var f deploydb.FlowFilter
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List flows, newest first",
		Example: `  deploydb flow list --service billing`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			list, err := c.Flows(c.ctx, f)
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return flowTable(w, list) })
		},
	}
	cmd.Flags().StringVar(&f.Service, "service", "", "only flows of this service")
	cmd.Flags().Int64Var(&f.Artifact, "artifact", 0, "only flows of this artifact ID")
	cmd.Flags().BoolVar(&f.Ascending, "asc", false, "oldest first")
	pageFlags(cmd, &f.Page)
	return cmd
}
