package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deploydb/deploydb"
)

func (a *app) eventsCommand() *cobra.Command {
	var f deploydb.EventFilter
	var typ string
	var follow bool
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show the event log: what happened, who did it and why",
		Long: `Show the event log, oldest first: every change DeployDB recorded, with the
caller who caused it and, for operator actions, their reason.

Without --follow it prints one page: at most --limit events after --after.
The next page is --after the last ID shown. With --follow it prints the
events after --after, then each new one as it is recorded, until
interrupted; when the connection drops it reconnects and resumes after the
last event printed, so none is shown twice or missed.

With --output json it prints one event per line (JSON Lines), as the
server sent it.`,
		Example: `  deploydb events --service billing --environment prod
  deploydb events --type deployment.failed --after 1200 --limit 50
  deploydb events --follow --environment prod -o json | jq -r .type`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.After < 0 {
				return usagef("--after must be an event ID, 0 or more, not %d", f.After)
			}
			if follow && cmd.Flags().Changed("limit") {
				return usagef("--limit does not apply to --follow")
			}
			f.Type = deploydb.EventType(typ)
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			if follow {
				return c.followEvents(f)
			}
			list, err := c.Events(c.ctx, f)
			if err != nil {
				return err
			}
			if c.format == OutputJSON {
				return jsonLines(c.out, c.body)
			}
			return eventTable(c.out, list)
		},
	}
	fl := cmd.Flags()
	fl.Int64Var(&f.After, "after", 0, "only events after this event ID")
	fl.StringVar(&f.Service, "service", "", "only events of this service")
	fl.StringVar(&f.Environment, "environment", "", "only events in this environment")
	fl.StringVar(&typ, "type", "", "only events of this type, such as deployment.failed")
	fl.StringVar(&f.Actor, "actor", "", "only events caused by this caller")
	fl.IntVar(&f.Limit, "limit", 0, "at most this many events, 1 to 1000 (default: the server's, 100)")
	fl.BoolVarP(&follow, "follow", "f", false, "keep printing new events as they are recorded")
	_ = cmd.RegisterFlagCompletionFunc("type", cobra.FixedCompletions(eventTypeNames(), cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// eventTypeNames lists the event types for completion.
func eventTypeNames() []string {
	names := make([]string, len(deploydb.EventTypes))
	for i, t := range deploydb.EventTypes {
		names[i] = string(t)
	}
	return names
}

// followEvents prints the stream until the command is interrupted, which
// is how it is meant to end: that is a success.
func (c *call) followEvents(f deploydb.EventFilter) error {
	var show func(ev *deploydb.Event, raw []byte) error
	if c.format == OutputJSON {
		show = func(_ *deploydb.Event, raw []byte) error { return writeLine(c.out, raw) }
	} else {
		// The header comes with the first event, so that a stream the
		// server refuses prints only the error.
		header := eventLine(eventHeader())
		show = func(ev *deploydb.Event, _ []byte) error {
			_, err := io.WriteString(c.out, header+eventLine(eventRow(ev)))
			header = ""
			return err
		}
	}
	err := c.FollowEvents(c.ctx, f, show)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// jsonLines writes each element of a JSON array on a line of its own.
func jsonLines(w io.Writer, raw []byte) error {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("the server's response is not a JSON list: %w", err)
	}
	for _, item := range list {
		if err := writeLine(w, item); err != nil {
			return err
		}
	}
	return nil
}

// writeLine writes one JSON value, compacted, and a newline.
func writeLine(w io.Writer, raw []byte) error {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return fmt.Errorf("the server's response is not JSON: %w", err)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

func eventHeader() []string {
	return []string{"ID", "TIME", "TYPE", "SERVICE", "ENV", "DEPLOYMENT", "STATUS", "ACTOR", "WHY"}
}

// eventRow returns the cells of one event. WHY is the operator's reason,
// else the detail DeployDB recorded.
func eventRow(ev *deploydb.Event) []string {
	why := ev.Reason
	if why == "" {
		why = ev.Detail
	}
	return []string{id(ev.ID), timeCell(ev.CreatedAt), string(ev.Type), ev.Service, ev.Environment, id(ev.Deployment), ev.Status, ev.Actor, why}
}

// eventLine lays out one row of a followed stream in fixed columns: they
// cannot be measured ahead, so the usual values fit and a longer one pushes
// the rest of its line along.
func eventLine(row []string) string {
	widths := []int{6, 20, 21, 12, 10, 10, 11, 10}
	var b strings.Builder
	for i, c := range row {
		c = cell(c)
		if i == len(row)-1 {
			b.WriteString(c)
			break
		}
		fmt.Fprintf(&b, "%-*s  ", widths[i], c)
	}
	return b.String() + "\n"
}

func eventTable(w io.Writer, list []*deploydb.Event) error {
	rows := make([][]string, 0, len(list))
	for _, ev := range list {
		rows = append(rows, eventRow(ev))
	}
	return table(w, eventHeader(), rows)
}
