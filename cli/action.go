package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

// actionFlags are the flags of an operator action: why it is taken, and
// the idempotency key every write accepts.
type actionFlags struct {
	reason string
	key    string
}

// add adds --reason (required unless optional) and --idempotency-key to cmd.
func (f *actionFlags) add(cmd *cobra.Command, optional bool) {
	usage := "why: recorded with the action in the event log (required)"
	if optional {
		usage = "why: recorded with the action in the event log"
	}
	cmd.Flags().StringVar(&f.reason, "reason", "", usage)
	cmd.Flags().StringVar(&f.key, "idempotency-key", "", "send this Idempotency-Key, so that a retry is answered with the first response")
	if !optional {
		_ = cmd.MarkFlagRequired("reason")
	}
}

// required returns the reason, or a usage error when it is missing or
// blank: operator actions are audited with who and why, and the server
// would refuse the action anyway.
func (f *actionFlags) required() (string, error) {
	r := strings.TrimSpace(f.reason)
	if r == "" {
		return "", usagef("--reason is required: operator actions are recorded with who and why")
	}
	return r, nil
}
