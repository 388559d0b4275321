package cli

import (
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/client"
)

func (a *app) promotionCommand() *cobra.Command {
	cmd := groupCommand("promotion", "Report and read promotion results",
		`Report the result of a promotion (a test job does this after verifying a
deployment) and read results back. The promotions themselves are
configuration: see "deploydb config promotions".`)
	cmd.AddCommand(a.promotionReportCommand(), a.promotionGetCommand())
	return cmd
}

func (a *app) promotionReportCommand() *cobra.Command {
	var status, infoURL, key string
	cmd := &cobra.Command{
		Use:   "report DEPLOYMENT_ID PROMOTION --status SUCCESS|FAILED",
		Short: "Report the result of a promotion for a deployment",
		Long: `Report the result of promotion PROMOTION for a completed deployment: SUCCESS
or FAILED (FAILURE is accepted as FAILED). When every promotion of the
deployment has succeeded, the deployment is verified (SUCCESS) and the
artifact moves on to the next environment; a failed one fails it.

A result is accepted only while the deployment awaits it, so reporting twice
exits 5; a retried report that exits 5 went through the first time if the
deployment's results (deployment get) show it.`,
		Example: `  deploydb promotion report 7 smoke --status SUCCESS --info-url https://ci.example.com/job/smoke/42`,
		Args:    exactArgs("DEPLOYMENT_ID", "PROMOTION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := promotionReportArgs(args, status, infoURL)
			if err != nil {
				return err
			}
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			res, err := c.ReportPromotion(c.ctx, r, client.IdempotencyKey(key))
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return promotionResultTable(w, []*deploydb.PromotionResult{res}) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&status, "status", "", "SUCCESS or FAILED (required)")
	f.StringVar(&infoURL, "info-url", "", "where to read about the result, such as the test job's page")
	f.StringVar(&key, "idempotency-key", "", "send this Idempotency-Key, so that a retry is answered with the first response")
	_ = cmd.MarkFlagRequired("status")
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions([]string{"SUCCESS", "FAILED"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// promotionReportArgs returns the report the arguments and flags of
// promotion report describe.
func promotionReportArgs(args []string, status, infoURL string) (deploydb.PromotionReport, error) {
	id, err := parseID("deployment ID", args[0])
	if err != nil {
		return deploydb.PromotionReport{}, err
	}
	if args[1] == "" {
		return deploydb.PromotionReport{}, usagef("PROMOTION must not be empty")
	}
	st, err := deploydb.ParsePromotionReport(strings.ToUpper(status))
	if err != nil || (st != deploydb.PromotionSuccess && st != deploydb.PromotionFailed) {
		return deploydb.PromotionReport{}, usagef("--status must be SUCCESS or FAILED, not %q", status)
	}
	return deploydb.PromotionReport{Deployment: id, Promotion: args[1], Status: st, InfoURL: infoURL}, nil
}

func (a *app) promotionGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "get DEPLOYMENT_ID RESULT_ID",
		Short:   "Show one promotion result of a deployment",
		Example: `  deploydb promotion get 7 3`,
		Args:    exactArgs("DEPLOYMENT_ID", "RESULT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dep, err := parseID("deployment ID", args[0])
			if err != nil {
				return err
			}
			id, err := parseID("result ID", args[1])
			if err != nil {
				return err
			}
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			res, err := c.PromotionResult(c.ctx, dep, id)
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return promotionResultTable(w, []*deploydb.PromotionResult{res}) })
		},
	}
}
