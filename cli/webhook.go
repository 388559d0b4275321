package cli

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/client"
)

func (a *app) webhookCommand() *cobra.Command {
	cmd := groupCommand("webhook", "Webhook deliveries: list them, redeliver one; make a signing secret",
		`List webhook deliveries (every call DeployDB owes a hook, with its state
and last error), queue a failed one again, and make a secret that signs a
hook's calls.`)
	cmd.AddCommand(a.webhookDeliveriesCommand(), a.webhookRedeliverCommand(), a.webhookSecretCommand())
	return cmd
}

// secretBytes is the size of the keys webhook secret makes: as long as
// the HMAC-SHA256 output.
const secretBytes = 32

func (a *app) webhookSecretCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "secret",
		Short: "Print a new random Standard Webhooks secret (whsec_...)",
		Long: `Print a new random secret for a hook's secret: key: "whsec_" and the base64
of 32 random bytes. Give the same secret to the receiver, which verifies the
webhook-signature of each call with it. Keep it out of the config files:
put it in an environment variable and write secret: ${env:NAME}.

To rotate a secret without dropping calls, list the new one first and the
old one after it (secret: [new, old]): each call then carries a signature
by each, until the receiver has the new one and the old is removed.`,
		Example: "  export BILLING_HOOK_SECRET=$(deploydb webhook secret)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			key := make([]byte, secretBytes)
			if _, err := rand.Read(key); err != nil {
				return err
			}
			_, err := fmt.Fprintln(a.env.Stdout, "whsec_"+base64.StdEncoding.EncodeToString(key))
			return err
		},
	}
}

func (a *app) webhookDeliveriesCommand() *cobra.Command {
	var status, hook string
	var deployment int64
	cmd := &cobra.Command{
		Use:     "deliveries",
		Short:   "List webhook deliveries, newest first",
		Example: "  deploydb webhook deliveries --status failed\n  deploydb webhook deliveries --hook jenkins-deploy --deployment 7",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			list, err := c.Deliveries(c.ctx, deploydb.DeliveryFilter{Status: status, Hook: hook, Deployment: deployment})
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return deliveriesTable(w, list) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&status, "status", "", "only deliveries in this state: pending, delivered or failed")
	f.StringVar(&hook, "hook", "", "only deliveries for the hook of this name (a bare URL hook is named by its URL as written)")
	f.Int64Var(&deployment, "deployment", 0, "only deliveries about this deployment")
	return cmd
}

func (a *app) webhookRedeliverCommand() *cobra.Command {
	var f actionFlags
	cmd := &cobra.Command{
		Use:   "redeliver ID --reason TEXT",
		Short: "Queue a failed (or delivered) webhook delivery again",
		Long: `Queue delivery ID again, due now, with the same webhook-id so that the
receiver can drop a duplicate. Exits 4 for an unknown delivery, 5 when it is
pending already.`,
		Example: `  deploydb webhook redeliver 42 --reason "Jenkins is back"`,
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("delivery ID", args[0])
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
			d, err := c.Redeliver(c.ctx, id, reason, client.IdempotencyKey(f.key))
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return deliveriesTable(w, []client.Delivery{*d}) })
		},
	}
	f.add(cmd, false)
	return cmd
}

func deliveriesTable(w io.Writer, list []client.Delivery) error {
	rows := make([][]string, 0, len(list))
	for _, d := range list {
		dep := ""
		if d.Deployment != 0 {
			dep = strconv.FormatInt(d.Deployment, 10)
		}
		hook := d.Hook
		if hook == "" {
			hook = d.URL
		}
		rows = append(rows, []string{strconv.FormatInt(d.ID, 10), string(d.EventType), dep, hook, d.Status, fmt.Sprint(d.Attempts), d.LastError, timeCell(d.UpdatedAt)})
	}
	return table(w, []string{"ID", "EVENT", "DEPLOYMENT", "HOOK", "STATUS", "ATTEMPTS", "LAST ERROR", "UPDATED"}, rows)
}
