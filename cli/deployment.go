package cli

import (
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/client"
)

func (a *app) deploymentCommand() *cobra.Command {
	cmd := groupCommand("deployment", "Read deployments; report what an orchestrator did",
		`Read deployments, and report what the orchestrator did with one:
deployment start, complete or fail.

A deployment is one artifact delivered to one environment for one service.
DeployDB creates it CREATED and calls the environment's webhooks; the
orchestrator then reports STARTED, COMPLETED or FAILED.`)
	cmd.Aliases = []string{"deployments", "deploy"}
	cmd.AddCommand(
		a.deploymentGetCommand(),
		a.deploymentListCommand(),
		a.deploymentReportCommand("start", deploydb.DeploymentStarted, "Report that the orchestrator started a deployment"),
		a.deploymentReportCommand("complete", deploydb.DeploymentCompleted, "Report that a deployment completed: the artifact runs there"),
		a.deploymentReportCommand("fail", deploydb.DeploymentFailed, "Report that a deployment failed"),
	)
	return cmd
}

func (a *app) deploymentGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "get ID",
		Short:   "Show one deployment with its promotion results",
		Example: `  deploydb deployment get 7`,
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("deployment ID", args[0])
			if err != nil {
				return err
			}
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			d, err := c.Deployment(c.ctx, id)
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return deploymentTable(w, []*deploydb.Deployment{d}) })
		},
	}
}

// deploymentFilterFlags adds the flags that select deployments.
func deploymentFilterFlags(cmd *cobra.Command, f *deploydb.DeploymentFilter, status *string, service bool) {
	fl := cmd.Flags()
	if service {
		fl.StringVar(&f.Service, "service", "", "only deployments of this service")
	}
	fl.StringVar(&f.Environment, "environment", "", "only deployments to this environment")
	fl.StringVar(status, "status", "", "only deployments in this status ("+statusList()+")")
	fl.BoolVar(&f.Ascending, "asc", false, "oldest first")
	pageFlags(cmd, &f.Page)
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(statusNames(), cobra.ShellCompDirectiveNoFileComp))
}

func statusNames() []string {
	names := make([]string, len(deploydb.DeploymentStatuses))
	for i, s := range deploydb.DeploymentStatuses {
		names[i] = string(s)
	}
	return names
}

func statusList() string { return strings.Join(statusNames(), ", ") }

func (a *app) deploymentListCommand() *cobra.Command {
	var f deploydb.DeploymentFilter
	var status string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List deployments, newest first",
		Long: `List deployments, newest first (--asc: oldest first), optionally only those of
a service, an environment, an artifact or in a status. The server checks the
status: an unknown one exits 3.`,
		Example: `  deploydb deployment list --service billing --environment prod
  deploydb deployment list --status CREATED -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
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
	deploymentFilterFlags(cmd, &f, &status, true)
	cmd.Flags().Int64Var(&f.Artifact, "artifact", 0, "only deployments of this artifact ID")
	return cmd
}

func (a *app) deploymentReportCommand(verb string, status deploydb.DeploymentStatus, short string) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Long: short + ` (status ` + string(status) + `), and print the
deployment as it is afterwards.

A report the deployment's status does not allow exits 5 and prints the
status the deployment has. The same report twice is such a report: a job
that retries after a network error and gets exit 5 can tell from that
status whether its first attempt went through.`,
		Example: "  deploydb deployment " + verb + " 7",
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("deployment ID", args[0])
			if err != nil {
				return err
			}
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			d, err := c.ReportDeployment(c.ctx, id, status, client.IdempotencyKey(key))
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return deploymentTable(w, []*deploydb.Deployment{d}) })
		},
	}
	cmd.Flags().StringVar(&key, "idempotency-key", "", "send this Idempotency-Key, so that a retry is answered with the first response")
	return cmd
}
