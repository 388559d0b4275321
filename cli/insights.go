package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/client"
)

// stdinName names standard input in the problems of an import read from
// it ("deploydb import -").
const stdinName = "<stdin>"

func (a *app) importCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Import past deployments from another tool (NDJSON, one deployment a line)",
		Long: `Import the deployment history of another tool, so that DeployDB starts with
it: FILE holds one deployment a line (NDJSON), as described in docs/api.md;
"-" reads standard input. Needs the admin scope.

Every line is checked before anything is written. When a line is bad,
nothing is imported: every problem is printed, one per line as
"FILE:LINE: field: message", and the command exits 3. Importing the same
file again changes nothing: its deployments are counted as unchanged.

A large file takes a while to store: unless --timeout says otherwise, the
command waits up to 10 minutes for the answer (as long as the server
gives an import).`,
		Example: `  deploydb import history.ndjson
  jq -c '.deployments[]' export.json | deploydb import -`,
		Args: exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f := cmd.Flags().Lookup("timeout"); f != nil && !f.Changed {
				a.timeout = ImportTimeout
			}
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			name, body, err := a.readImport(args[0])
			if err != nil {
				return err
			}
			res, err := c.Import(c.ctx, bytes.NewReader(body))
			if err != nil {
				return importProblems(name, err)
			}
			return c.print(func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "imported %s (%d unchanged, %s created)\n",
					plural(res.Imported, "deployment"), res.Unchanged, plural(res.ArtifactsCreated, "artifact"))
				return err
			})
		},
	}
}

// readImport reads the import file name ("-": standard input) whole,
// before anything is sent: a file that cannot be read is a local error
// (exit 1), never taken for a server that cannot be reached (exit 7,
// which a CI job may retry). It returns the name problems are reported
// under.
func (a *app) readImport(name string) (string, []byte, error) {
	var r io.Reader
	if name == "-" {
		r, name = a.env.Stdin, stdinName
	} else {
		fi, err := os.Stat(name)
		if err != nil {
			return name, nil, err
		}
		if !fi.Mode().IsRegular() {
			return name, nil, usagef("%s is not a file", name)
		}
		f, err := os.Open(name)
		if err != nil {
			return name, nil, err
		}
		defer f.Close()
		r = f
	}
	body, err := io.ReadAll(io.LimitReader(r, deploydb.MaxImportBytes+1))
	if err != nil {
		return name, nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(body) > deploydb.MaxImportBytes {
		return name, nil, usagef("%s is larger than an import takes (%d MiB): split it; importing is idempotent, so the parts may overlap", name, deploydb.MaxImportBytes>>20)
	}
	return name, body, nil
}

// ImportTimeout is how long deploydb import waits for the server's
// answer unless --timeout is given: as long as the server lets an import
// take (httpapi.ImportTimeout).
const ImportTimeout = 10 * time.Minute

// importProblems names the file and line of each problem of a refused
// import as its field, "FILE:LINE: field", so that they print as
// "FILE:LINE: field: message" (as config check prints its problems).
func importProblems(file string, err error) error {
	var e *deploydb.Error
	if !errors.As(err, &e) || len(e.Fields) == 0 {
		return err
	}
	named := *e
	named.Fields = make([]deploydb.FieldError, len(e.Fields))
	for i, f := range e.Fields {
		if f.Line > 0 {
			where := file + ":" + strconv.Itoa(f.Line)
			if f.Field != "" {
				where += ": " + f.Field
			}
			f.Field = where
		}
		named.Fields[i] = f
	}
	return &named
}

func (a *app) doraCommand() *cobra.Command {
	var q client.DORAQuery
	var since, until string
	cmd := &cobra.Command{
		Use:   "dora",
		Short: "Show the DORA metrics of an environment over a window of time",
		Long: `Show the DORA metrics of the deployments that finished in an environment in
[--since, --until): deployment frequency, lead time for changes, change
failure rate, time to recover, and the rework rate, each with the counts it
was computed from. A figure with nothing to compute it from (no deployment,
no failure) shows as "—".

The environment defaults to the one the server's configuration marks
production: true; the window to the 30 days before now. --since takes an
RFC 3339 time, a date (midnight UTC), or a duration before --until such as
30d, 12h or 1d12h; --until takes an RFC 3339 time or a date.

With -o json it prints the server's report: the figures are in seconds and
fractions (see docs/api.md).`,
		Example: `  deploydb dora
  deploydb dora --environment staging --service billing --since 7d
  deploydb dora --since 2026-10-01 --until 2026-11-01 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if q.From, q.To, err = doraWindow(since, until, time.Now()); err != nil {
				return err
			}
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			rep, err := c.DORA(c.ctx, q)
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return doraReport(w, rep) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Environment, "environment", "", "the environment (default: the one marked production: true)")
	f.StringVar(&q.Service, "service", "", "only the deployments of this service (default: all)")
	f.StringVar(&since, "since", "", "start of the window: RFC 3339 time, date, or duration before --until such as 30d (default: 30d)")
	f.StringVar(&until, "until", "", "end of the window, excluded: RFC 3339 time or date (default: now)")
	envAlias(f)
	return cmd
}

// doraWindow returns the window --since and --until name, relative to
// now: zero times where the server's defaults apply. A duration --since
// counts back from --until, else from now, which is then sent as the end.
func doraWindow(since, until string, now time.Time) (from, to time.Time, err error) {
	if until != "" {
		if to, err = parseWhen("--until", until, now); err != nil {
			return from, to, err
		}
	}
	if since == "" {
		return from, to, nil
	}
	if from, err = parseInstant(since); err != nil {
		d, err := parseDays(since)
		if err != nil {
			return from, to, usagef("--since must be an RFC 3339 time, a date, or a duration such as 30d, 12h or 1d12h, not %q", since)
		}
		if d <= 0 {
			return from, to, usagef("--since must be a duration greater than zero, not %q", since)
		}
		if to.IsZero() {
			to = now
		}
		from = to.Add(-d)
	}
	if !to.IsZero() && !from.Before(to) {
		return from, to, usagef("--since must be before --until")
	}
	return from, to, nil
}

// parseInstant parses an RFC 3339 time, or a date as its midnight UTC.
func parseInstant(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Parse(time.DateOnly, s)
}

// maxDays bounds the days of a duration, far below where a Duration
// overflows (106,751 days).
const maxDays = 100_000

// parseDays parses a Go duration with an optional leading count of days:
// "30d", "1d12h", "720h", "90m".
func parseDays(s string) (time.Duration, error) {
	var days time.Duration
	if n, rest, ok := strings.Cut(s, "d"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 || v > maxDays || n[0] == '+' {
			return 0, fmt.Errorf("bad count of days %q", n)
		}
		days, s = time.Duration(v)*24*time.Hour, rest
		if s == "" {
			return days, nil
		}
		if s[0] == '-' || s[0] == '+' {
			return 0, fmt.Errorf("a sign after the days")
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	return days + d, nil
}

// none is how a report shows a figure with nothing to compute it from.
const none = "—"

// doraReport writes the DORA report for people:
//
//	DORA  prod  2026-10-27 → 2026-11-26 (30 days)
//	deployment frequency  1.40/day  (42 successful)
//	...
func doraReport(w io.Writer, r *client.DORAReport) error {
	scope := r.Environment
	if r.Service != "" {
		scope += ", service " + r.Service
	}
	fmt.Fprintf(w, "DORA  %s  %s → %s (%s)\n", scope, windowEnd(r.From, r.To), windowEnd(r.To, r.From), days(r.DeploymentFrequency.Days))

	f, lt, cfr, rt, rw := r.DeploymentFrequency, r.LeadTime, r.ChangeFailureRate, r.RecoveryTime, r.ReworkRate
	leadCounts := plural(lt.Deployments, "deployment")
	if lt.WithoutCommits > 0 {
		leadCounts += fmt.Sprintf("; %d without commits", lt.WithoutCommits)
	}
	recovered := fmt.Sprintf("%d recovered", rt.Recovered)
	if rt.Unrecovered > 0 {
		recovered += fmt.Sprintf("; %d not yet", rt.Unrecovered)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, row := range [][3]string{
		{"deployment frequency", fmt.Sprintf("%.2f/day", f.PerDay), fmt.Sprintf("%d successful", f.Successful)},
		{"lead time (median)", seconds(lt.MedianSeconds), leadCounts},
		{"change failure rate", percent(cfr.Rate), fmt.Sprintf("%d failed of %d", cfr.Failed, cfr.Failed+cfr.Successful)},
		{"time to recover", seconds(rt.MedianSeconds), recovered},
		{"rework rate", percent(rw.Rate), fmt.Sprintf("%d of %d: rollbacks and hotfixes", rw.Rework, rw.Total)},
	} {
		fmt.Fprintf(tw, "%s\t%s\t(%s)\n", row[0], row[1], row[2])
	}
	return tw.Flush()
}

// windowEnd shows one end of a window: its date when both ends are at
// midnight UTC, else the time to the second.
func windowEnd(t, other deploydb.Time) string {
	midnight := func(t deploydb.Time) bool { return t.UTC().Equal(t.UTC().Truncate(24 * time.Hour)) }
	if midnight(t) && midnight(other) {
		return t.UTC().Format(time.DateOnly)
	}
	return timeCell(t)
}

// days shows a window's length: "30 days", "1 day", "0.5 days".
func days(n float64) string {
	s := strconv.FormatFloat(math.Round(n*100)/100, 'f', -1, 64)
	if s == "1" {
		return "1 day"
	}
	return s + " days"
}

// percent shows a rate as a percentage, "—" for none.
func percent(rate *float64) string {
	if rate == nil {
		return none
	}
	return strconv.FormatFloat(*rate*100, 'f', 1, 64) + "%"
}

// seconds shows a number of seconds as a duration, "—" for none.
func seconds(s *float64) string {
	if s == nil {
		return none
	}
	return approxDuration(time.Duration(math.Round(*s)) * time.Second)
}

// approxDuration shows d in its two largest units, rounded to the
// smaller: "2d4h", "3h12m", "47m", "5m30s", "45s".
func approxDuration(d time.Duration) string {
	if d < 0 {
		return "-" + approxDuration(-d)
	}
	const day = 24 * time.Hour
	two := func(big, small time.Duration, bigUnit, smallUnit string) string {
		d = d.Round(small)
		s := strconv.FormatInt(int64(d/big), 10) + bigUnit
		if rest := d % big / small; rest > 0 {
			s += strconv.FormatInt(int64(rest), 10) + smallUnit
		}
		return s
	}
	switch {
	case d >= day:
		return two(day, time.Hour, "d", "h")
	case d >= time.Hour:
		return two(time.Hour, time.Minute, "h", "m")
	case d >= time.Minute:
		return two(time.Minute, time.Second, "m", "s")
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

func (a *app) diffCommand() *cobra.Command {
	var commits bool
	cmd := &cobra.Command{
		Use:   "diff FROM TO",
		Short: "Show how two environments differ: the services whose version differs",
		Long: `Compare what runs in environment FROM with what runs in environment TO: one
row per service whose current version differs, or that runs on one side
only ("-" on the other). COMMITS says whether FROM runs a newer version of
the same artifact ("ahead N": N commits in FROM not yet in TO) or an older
one ("behind N"), when the artifacts were published or imported with their
commits; "ahead" alone when they carry none, "-" when the two sides run
different artifacts or one side runs nothing. --commits lists the commits
of each service under the table, newest first.

Prints "no differences" when the two environments run the same versions.`,
		Example: `  deploydb diff staging prod
  deploydb diff staging prod --commits
  deploydb diff integ staging -o json`,
		Args: exactArgs("FROM", "TO"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == args[1] {
				return usagef("FROM and TO are both %s: name two environments", args[0])
			}
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			d, err := c.Diff(c.ctx, args[0], args[1])
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return diffTable(w, d, commits) })
		},
	}
	cmd.Flags().BoolVar(&commits, "commits", false, "list the commits between the two versions of each service")
	return cmd
}

// diffTable writes an environment diff: one row per service, then with
// commits the commits of each service that has some.
func diffTable(w io.Writer, d *deploydb.EnvironmentDiff, commits bool) error {
	if len(d.Services) == 0 {
		_, err := fmt.Fprintf(w, "no differences between %s and %s\n", d.From, d.To)
		return err
	}
	rows := make([][]string, 0, len(d.Services))
	for _, s := range d.Services {
		full := s.From != nil && s.To != nil && (s.From.Group != s.To.Group || s.From.Name != s.To.Name)
		rows = append(rows, []string{s.Service, diffVersion(s.From, full), diffVersion(s.To, full), diffCommits(s)})
	}
	if err := table(w, []string{"SERVICE", d.From, d.To, "COMMITS"}, rows); err != nil || !commits {
		return err
	}
	for _, s := range d.Services {
		if len(s.Commits) == 0 {
			continue
		}
		newer, older := d.From, d.To
		if s.Direction == deploydb.DiffBehind {
			newer, older = older, newer
		}
		fmt.Fprintf(w, "\n%s: %s in %s, not in %s\n", s.Service, plural(len(s.Commits), "commit"), newer, older)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, c := range s.Commits {
			fmt.Fprintf(tw, "  %s\t%s\n", cell(c.SHA), timeCell(c.Timestamp))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// diffVersion shows one side of a service diff: the version, or with full
// the artifact's group:name:version; "" (shown "-") when nothing runs.
func diffVersion(a *deploydb.MatrixArtifact, full bool) string {
	switch {
	case a == nil:
		return ""
	case full:
		return a.Group + ":" + a.Name + ":" + a.Version
	}
	return a.Version
}

// diffCommits shows where FROM stands against TO: "ahead 3", "behind 2",
// "ahead" when the artifacts carry no commits, "" when the two sides do
// not run versions of one artifact.
func diffCommits(s deploydb.ServiceDiff) string {
	if s.Direction == "" {
		return ""
	}
	switch n := len(s.Commits); {
	case n == 0:
		return s.Direction
	case s.CommitsTruncated:
		return fmt.Sprintf("%s %d+", s.Direction, n)
	default:
		return fmt.Sprintf("%s %d", s.Direction, n)
	}
}
