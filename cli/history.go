package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/deploydb/deploydb"
)

func (a *app) historyCommand() *cobra.Command {
	var f deploydb.DeploymentFilter
	var status, since, until string
	cmd := &cobra.Command{
		Use:   "history SERVICE",
		Short: "Show the deployments of a service, newest first",
		Long: `Show the deployments of a service, newest first by when they were recorded
(imported deployments are recorded when imported: they come before what
ran since them): what was deployed where, when, and whether it was
verified.

--since and --until select the deployments created in [--since, --until)
(an imported one is created when it started): an RFC 3339 time, a date, or
a duration before now such as 7d or 12h. After a full page, the command
says on standard error how to ask for the next one (--cursor): unlike
--page, a cursor does not shift when deployments are added meanwhile.`,
		Example: `  deploydb history billing
  deploydb history billing --env prod --per-page 5
  deploydb history billing --env prod --status FAILED --since 30d
  deploydb history billing --since 2026-11-01 --until 2026-11-08 -o json`,
		Args: exactArgs("SERVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.Service = args[0]
			f.Status = deploydb.DeploymentStatus(strings.ToUpper(status))
			now := time.Now()
			var err error
			if since != "" {
				if f.From, err = parseWhen("--since", since, now); err != nil {
					return err
				}
			}
			if until != "" {
				if f.To, err = parseWhen("--until", until, now); err != nil {
					return err
				}
			}
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			list, err := c.Deployments(c.ctx, f)
			if err != nil {
				return err
			}
			if err := c.print(func(w io.Writer) error { return deploymentTable(w, list) }); err != nil {
				return err
			}
			size := f.Page.Size
			if size == 0 {
				size = deploydb.DefaultPageSize
			}
			switch {
			case len(list) < size:
			case f.Page.Number > 0:
				// A full page: there may be more. Paging by number goes
				// on by number (the server takes one or the other).
				fmt.Fprintf(cmd.ErrOrStderr(), "more: --page %d\n", f.Page.Number+1)
			default:
				fmt.Fprintf(cmd.ErrOrStderr(), "more: add --cursor %d\n", list[len(list)-1].ID)
			}
			return nil
		},
	}
	deploymentFilterFlags(cmd, &f, &status, false)
	fl := cmd.Flags()
	fl.StringVar(&since, "since", "", "only deployments created since then: RFC 3339 time, date, or duration before now such as 7d")
	fl.StringVar(&until, "until", "", "only deployments created before then: RFC 3339 time, date, or duration before now")
	fl.Int64Var(&f.Cursor, "cursor", 0, "go on after this deployment (the cursor a full page gave)")
	return cmd
}

// parseWhen parses the value of flag: an RFC 3339 time, a date (its
// midnight UTC), or a duration before now such as 7d, 12h or 1d12h.
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if t, err := parseInstant(s); err == nil {
		return t, nil
	}
	d, err := parseDays(s)
	if err != nil || d <= 0 {
		return time.Time{}, usagef("%s must be an RFC 3339 time, a date, or a duration before now such as 7d, 12h or 1d12h, not %q", flag, s)
	}
	return now.Add(-d), nil
}
