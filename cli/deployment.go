package cli

import (
	"context"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/client"
)

func (a *app) deploymentCommand() *cobra.Command {
	cmd := groupCommand("deployment", "Read deployments; report what an orchestrator did; retry, roll back, hotfix",
		`Read deployments, report what the orchestrator did with one (deployment
start, complete or fail), and act on them as an operator (deployment retry,
rollback or hotfix, each with a reason).

A deployment is one artifact delivered to one environment for one service.
DeployDB creates it CREATED and calls the environment's webhooks; the
orchestrator then reports STARTED, COMPLETED or FAILED. A deployment whose
turn came while its environment is busy, locked or frozen waits as
NOT_STARTED; the WAITING column says why.`)
	cmd.Aliases = []string{"deployments", "deploy"}
	cmd.AddCommand(
		a.deploymentGetCommand(),
		a.deploymentListCommand(),
		a.deploymentReportCommand("start", deploydb.DeploymentStarted, "Report that the orchestrator started a deployment"),
		a.deploymentReportCommand("complete", deploydb.DeploymentCompleted, "Report that a deployment completed: the artifact runs there"),
		a.deploymentReportCommand("fail", deploydb.DeploymentFailed, "Report that a deployment failed"),
		a.deploymentRetryCommand(),
		a.deploymentRollbackCommand(),
		a.deploymentHotfixCommand(),
	)
	return cmd
}

func (a *app) deploymentGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one deployment with its promotion results",
		Long: `Show one deployment: when its turn came (DUE), why it waits if it does
(WAITING: the environment is busy, locked or frozen), then its promotion
results with who reported each.`,
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
			return c.print(func(w io.Writer) error { return deploymentDetail(w, d) })
		},
	}
}

// deploymentFilterFlags adds the flags that select deployments.
func deploymentFilterFlags(cmd *cobra.Command, f *deploydb.DeploymentFilter, status *string, service bool) {
	fl := cmd.Flags()
	if service {
		fl.StringVar(&f.Service, "service", "", "only deployments of this service")
	}
	fl.StringVar(&f.Environment, "environment", "", "only deployments to this environment (or --env)")
	envAlias(fl)
	fl.StringVar(status, "status", "", "only deployments in this status ("+statusList()+")")
	fl.BoolVar(&f.Ascending, "asc", false, "oldest first")
	pageFlags(cmd, &f.Page)
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(statusNames(), cobra.ShellCompDirectiveNoFileComp))
}

// envAlias makes --env, as people abbreviate it, --environment.
func envAlias(fl *pflag.FlagSet) {
	fl.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "env" {
			name = "environment"
		}
		return pflag.NormalizedName(name)
	})
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

func (a *app) deploymentRetryCommand() *cobra.Command {
	var f actionFlags
	cmd := &cobra.Command{
		Use:   "retry ID --reason TEXT",
		Short: "Retry a FAILED deployment",
		Long: `Retry FAILED deployment ID: DeployDB creates a new deployment of the same
artifact to the same environment (reason retry), CREATED once the
environment is free, and its flow carries on from there. Print the new
deployment.

Exits 4 for an unknown deployment, 5 unless it is the latest FAILED
deployment of a FAILED flow (a second retry of the same one is refused).`,
		Example: `  deploydb deployment retry 7 --reason "flaky network, runner replaced"`,
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.deploymentAction(cmd, args, &f, (*client.Client).RetryDeployment)
		},
	}
	f.add(cmd, false)
	return cmd
}

func (a *app) deploymentRollbackCommand() *cobra.Command {
	var f actionFlags
	cmd := &cobra.Command{
		Use:   "rollback ID --reason TEXT",
		Short: "Roll a service back to its last known good artifact in an environment",
		Long: `Roll the service of deployment ID back, in the environment of deployment
ID, to its last known good artifact there (the latest one verified
there): DeployDB creates a deployment of it (reason rollback), ahead of
deployments waiting there, CREATED once the environment is free. Print
the new deployment.

Exits 4 for an unknown deployment, 5 when there is no last known good
artifact to roll back to.`,
		Example: `  deploydb deployment rollback 9 --reason "1.5.0 breaks invoices"`,
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.deploymentAction(cmd, args, &f, (*client.Client).RollbackDeployment)
		},
	}
	f.add(cmd, false)
	return cmd
}

// deploymentAction runs an operator action on deployment args[0] and
// prints the deployment it created.
func (a *app) deploymentAction(cmd *cobra.Command, args []string, f *actionFlags,
	act func(c *client.Client, ctx context.Context, id int64, reason string, opts ...client.CallOption) (*deploydb.Deployment, error)) error {
	id, err := parseID("deployment ID", args[0])
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
	d, err := act(c.Client, c.ctx, id, reason, client.IdempotencyKey(f.key))
	if err != nil {
		return err
	}
	return c.print(func(w io.Writer) error { return deploymentTable(w, []*deploydb.Deployment{d}) })
}

func (a *app) deploymentHotfixCommand() *cobra.Command {
	var f actionFlags
	var r deploydb.HotfixRequest
	cmd := &cobra.Command{
		Use:   "hotfix --artifact ID --service NAME --environment NAME --reason TEXT",
		Short: "Deploy a chosen artifact to an environment out of pipeline order",
		Long: `Deploy artifact ID for a service straight to an environment of its pipeline,
out of pipeline order: DeployDB creates a deployment (reason hotfix), ahead
of deployments waiting there, CREATED once the environment is free. Print
the new deployment. Every flag is required.

Exits 4 for an unknown artifact, service or environment, 3 when the
service does not consume the artifact or the environment is not in its
pipeline.`,
		Example: `  deploydb deployment hotfix --artifact 42 --service billing --environment prod --reason "CVE-2025-1234"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			reason, err := f.required()
			if err != nil {
				return err
			}
			if r.Artifact <= 0 {
				return usagef("--artifact must be a positive integer, not %d", r.Artifact)
			}
			if r.Service == "" || r.Environment == "" {
				return usagef("--service and --environment must not be empty")
			}
			r.Reason = reason
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			d, err := c.Hotfix(c.ctx, r, client.IdempotencyKey(f.key))
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return deploymentTable(w, []*deploydb.Deployment{d}) })
		},
	}
	fl := cmd.Flags()
	fl.Int64Var(&r.Artifact, "artifact", 0, "ID of the artifact to deploy (required)")
	fl.StringVar(&r.Service, "service", "", "the service to deploy it for (required)")
	fl.StringVar(&r.Environment, "environment", "", "the environment to deploy it to (required)")
	f.add(cmd, false)
	for _, name := range []string{"artifact", "service", "environment"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
