package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/client"
)

func (a *app) statusCommand() *cobra.Command {
	var service, at string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what runs where: one row per service, one column per environment",
		Long: `Show the service × environment matrix: for every service, the version that
runs in each environment of its pipeline and whether it was verified, the
deployment in flight there, a last attempt that failed before completing,
and which environments are locked or frozen.

` + statusLegend + `

With -o json, each cell also has the deployment ids, since when the current
version runs there (currentSince) and the last known good deployment
(lastKnownGood).

--at shows the matrix as it was at a past instant (an RFC 3339 time, a
date, or a duration before now such as 2h or 3d), worked out from the
history: each deployment with its status then, the locks then, and the
freezes of the configuration in force now.`,
		Example: `  deploydb status
  deploydb status --service billing -o json
  deploydb status --at 2026-11-20T14:00:00Z
  deploydb status --at 3h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var when time.Time
			if at != "" {
				var err error
				if when, err = parseWhen("--at", at, time.Now()); err != nil {
					return err
				}
			}
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			st, err := c.StatusAt(c.ctx, service, when)
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return statusMatrix(w, st) })
		},
	}
	cmd.Flags().StringVar(&service, "service", "", "only services whose name contains this")
	cmd.Flags().StringVar(&at, "at", "", "the matrix as it was then: RFC 3339 time, date, or duration before now such as 2h")
	return cmd
}

// Marks of the status matrix.
const (
	markVerified  = "✓"
	markCompleted = "…"
	markFailed    = "✗"
	markInFlight  = "→"
	markAttempt   = "!"
)

// statusLegend explains the marks of the status matrix; it is printed
// under it.
const statusLegend = `✓ verified (SUCCESS)    … completed, awaiting verification    ✗ failed after completing
→1.5.0 being deployed   !1.5.0 last attempt failed before completing   - nothing deployed`

// statusMatrix writes the status matrix, the legend, and a line for each
// environment that is locked or frozen saying why and since when.
func statusMatrix(w io.Writer, st *client.Status) error {
	if st.At != nil {
		if _, err := fmt.Fprintf(w, "as it was at %s\n", st.At); err != nil {
			return err
		}
	}
	header := []string{"SERVICE"}
	for _, e := range st.Environments {
		header = append(header, e.Name+columnMarks(e))
	}
	rows := make([][]string, 0, len(st.Services))
	for i := range st.Services {
		s := &st.Services[i]
		row := []string{s.Service}
		for _, e := range st.Environments {
			row = append(row, statusCellText(s.Cell(e.Name)))
		}
		rows = append(rows, row)
	}
	if err := table(w, header, rows); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, statusLegend)
	for _, e := range st.Environments {
		if e.Lock != nil {
			fmt.Fprintf(w, "%s [locked]: %s (%s); nothing new is activated there\n", e.Name, cell(e.Lock.Reason), lockedBy(e.Lock))
		}
		if e.Frozen != "" {
			fmt.Fprintf(w, "%s [frozen]: %s; nothing new is activated there\n", e.Name, cell(e.Frozen))
		}
	}
	return nil
}

// columnMarks returns " [locked]", " [frozen]", " [locked,frozen]" or "".
func columnMarks(e client.StatusEnvironment) string {
	var marks []string
	if e.Lock != nil {
		marks = append(marks, "locked")
	}
	if e.Frozen != "" {
		marks = append(marks, "frozen")
	}
	if len(marks) == 0 {
		return ""
	}
	return " [" + strings.Join(marks, ",") + "]"
}

// statusCellText renders one cell: "1.4.0 ✓ →1.5.0", "" when nothing was
// deployed there.
func statusCellText(c *client.StatusCell) string {
	if c == nil {
		return ""
	}
	var parts []string
	if c.Current != nil {
		parts = append(parts, c.Current.Artifact.Version+" "+statusMark(c.Current.Status))
	}
	// A COMPLETED deployment awaiting verification is both current and in
	// flight: it shows once, as current.
	if c.InFlight != nil && (c.Current == nil || c.InFlight.ID != c.Current.ID) {
		parts = append(parts, markInFlight+c.InFlight.Artifact.Version)
	}
	if c.LastAttempt != nil {
		parts = append(parts, markAttempt+c.LastAttempt.Artifact.Version)
	}
	return strings.Join(parts, " ")
}

// statusMark returns the mark of the current deployment's status, or the
// status itself when it has none.
func statusMark(s deploydb.DeploymentStatus) string {
	switch s {
	case deploydb.DeploymentSuccess:
		return markVerified
	case deploydb.DeploymentCompleted:
		return markCompleted
	case deploydb.DeploymentFailed:
		return markFailed
	}
	return string(s)
}

// lockedBy returns "by anonymous since 2025-11-25T22:41:00Z".
func lockedBy(l *deploydb.Lock) string {
	s := "by " + cell(l.Actor)
	if !l.CreatedAt.IsZero() {
		s += " since " + timeCell(l.CreatedAt)
	}
	return s
}
