package cli

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/client"
)

func (a *app) flowCommand() *cobra.Command {
	cmd := groupCommand("flow", "Read flows: one artifact's journey through a service's pipeline; cancel one",
		`Read flows, and cancel one. A flow is one artifact travelling through one
service's pipeline, with one deployment per environment; publishing an
artifact starts one flow per service that consumes it (REASON pipeline).
A rollback or a hotfix is a flow of its own, with one deployment.`)
	cmd.Aliases = []string{"flows"}
	cmd.AddCommand(a.flowGetCommand(), a.flowListCommand(), a.flowCancelCommand())
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

func (a *app) flowCancelCommand() *cobra.Command {
	var f actionFlags
	cmd := &cobra.Command{
		Use:   "cancel ID --reason TEXT",
		Short: "Cancel a flow: its deployments that have not completed are cancelled",
		Long: `Cancel flow ID: its deployments that have not completed (NOT_STARTED,
CREATED, STARTED) become CANCELLED, and the flow goes no further. What
completed stays as it is. Print the flow afterwards.

Exits 4 for an unknown flow, 5 when the flow is finished already (the
current status is printed).`,
		Example: `  deploydb flow cancel 3 --reason "1.5.0 is withdrawn"`,
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("flow ID", args[0])
			if err != nil {
				return err
			}
			reason, err := f.required()
			if err != nil {
				return err
			}
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			fl, err := c.CancelFlow(c.ctx, id, reason, client.IdempotencyKey(f.key))
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return flowDetail(w, fl) })
		},
	}
	f.add(cmd, false)
	return cmd
}
