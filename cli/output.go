package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/deploydb/deploydb"
)

// maxDescription is how many characters of a description a table shows.
const maxDescription = 60

// writeJSON writes a response body as the server sent it, indented by two
// spaces, with a final newline.
func writeJSON(w io.Writer, raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, bytes.TrimSpace(raw), "", "  "); err != nil {
		return fmt.Errorf("the server's response is not JSON: %w", err)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// table writes rows under a header, in columns aligned with two spaces.
// An empty table writes only the header, so that a script reading the
// table always finds its columns.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		for i := range r {
			r[i] = cell(r[i])
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// cell makes s fit one table cell: no tabs or line breaks, "-" for empty.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	return s
}

// short cuts a description to maxDescription characters.
func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= maxDescription {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:maxDescription-1])) + "…"
}

// timeCell shows a time to the second, in UTC, "-" when unset.
func timeCell(t deploydb.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// latest returns updated, or created when the record was never updated.
func latest(created, updated deploydb.Time) deploydb.Time {
	if updated.IsZero() {
		return created
	}
	return updated
}

func id(n int64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

// coordinates returns group:name:version.
func coordinates(a deploydb.Artifact) string {
	if a.Group == "" && a.Name == "" && a.Version == "" {
		return ""
	}
	return a.Group + ":" + a.Name + ":" + a.Version
}

func artifactTable(w io.Writer, list []*deploydb.Artifact) error {
	rows := make([][]string, 0, len(list))
	for _, a := range list {
		rows = append(rows, []string{id(a.ID), a.Group, a.Name, a.Version, a.SourceURL, timeCell(a.CreatedAt)})
	}
	return table(w, []string{"ID", "GROUP", "NAME", "VERSION", "SOURCE URL", "CREATED"}, rows)
}

// promotionSummary returns "smoke=SUCCESS,release-approval=STARTED".
func promotionSummary(list []deploydb.PromotionResult) string {
	parts := make([]string, 0, len(list))
	for _, p := range list {
		parts = append(parts, p.Promotion+"="+string(p.Status))
	}
	return strings.Join(parts, ",")
}

// deploymentTable writes deployments, one per row. A WAITING column, why a
// due deployment has not been activated, shows when a row has one.
func deploymentTable(w io.Writer, list []*deploydb.Deployment) error {
	waiting := false
	for _, d := range list {
		waiting = waiting || d.Waiting != ""
	}
	header := []string{"ID", "SERVICE", "ENV", "VERSION", "STATUS", "REASON", "PROMOTIONS", "UPDATED"}
	if waiting {
		header = append(header, "WAITING")
	}
	rows := make([][]string, 0, len(list))
	for _, d := range list {
		row := []string{
			id(d.ID), d.Service, d.Environment, coordinates(d.Artifact), string(d.Status), string(d.Reason),
			promotionSummary(d.Promotions), timeCell(latest(d.CreatedAt, d.UpdatedAt)),
		}
		if waiting {
			row = append(row, d.Waiting)
		}
		rows = append(rows, row)
	}
	return table(w, header, rows)
}

// deploymentDetail writes one deployment with when it became due and why
// it waits, then its promotion results.
func deploymentDetail(w io.Writer, d *deploydb.Deployment) error {
	err := table(w, []string{"ID", "SERVICE", "ENV", "VERSION", "STATUS", "REASON", "FLOW", "ON FAILURE", "DUE", "WAITING", "UPDATED"},
		[][]string{{
			id(d.ID), d.Service, d.Environment, coordinates(d.Artifact), string(d.Status), string(d.Reason), id(d.Flow),
			string(d.FailureStrategy), timeCell(d.DueAt), d.Waiting, timeCell(latest(d.CreatedAt, d.UpdatedAt)),
		}})
	if err != nil || len(d.Promotions) == 0 {
		return err
	}
	fmt.Fprintln(w)
	ps := make([]*deploydb.PromotionResult, len(d.Promotions))
	for i := range d.Promotions {
		ps[i] = &d.Promotions[i]
	}
	return promotionResultTable(w, ps)
}

// promotionResultTable writes promotion results, one per row. A DUE
// column, when a soak result succeeds by itself, shows when a row has one.
func promotionResultTable(w io.Writer, list []*deploydb.PromotionResult) error {
	due := false
	for _, p := range list {
		due = due || !p.DueAt.IsZero()
	}
	header := []string{"ID", "DEPLOYMENT", "PROMOTION", "TYPE", "STATUS", "REPORTED BY", "INFO URL", "UPDATED"}
	if due {
		header = append(header, "DUE")
	}
	rows := make([][]string, 0, len(list))
	for _, p := range list {
		row := []string{id(p.ID), id(p.Deployment), p.Promotion, p.Type, string(p.Status), p.ReportedBy, p.InfoURL, timeCell(latest(p.CreatedAt, p.UpdatedAt))}
		if due {
			row = append(row, timeCell(p.DueAt))
		}
		rows = append(rows, row)
	}
	return table(w, header, rows)
}

// stageSummary returns "integ=SUCCESS,staging=CREATED": where a flow's
// artifact is in its pipeline.
func stageSummary(list []deploydb.Deployment) string {
	parts := make([]string, 0, len(list))
	for _, d := range list {
		parts = append(parts, d.Environment+"="+string(d.Status))
	}
	return strings.Join(parts, ",")
}

func flowTable(w io.Writer, list []*deploydb.Flow) error {
	rows := make([][]string, 0, len(list))
	for _, f := range list {
		rows = append(rows, []string{
			id(f.ID), f.Service, coordinates(f.Artifact), f.Pipeline, string(f.Status), string(f.Reason), stageSummary(f.Deployments),
			timeCell(latest(f.CreatedAt, f.UpdatedAt)),
		})
	}
	return table(w, []string{"ID", "SERVICE", "VERSION", "PIPELINE", "STATUS", "REASON", "DEPLOYMENTS", "UPDATED"}, rows)
}

// flowDetail writes one flow, then its deployments.
func flowDetail(w io.Writer, f *deploydb.Flow) error {
	if err := flowTable(w, []*deploydb.Flow{f}); err != nil {
		return err
	}
	fmt.Fprintln(w)
	ds := make([]*deploydb.Deployment, len(f.Deployments))
	for i := range f.Deployments {
		ds[i] = &f.Deployments[i]
	}
	return deploymentTable(w, ds)
}

func serviceTable(w io.Writer, list []*deploydb.Service) error {
	rows := make([][]string, 0, len(list))
	for _, s := range list {
		rows = append(rows, []string{
			s.Ident, s.Pipeline(), strings.Join(s.Artifacts, ","), strings.Join(s.Promotions, ","),
			string(s.FailureStrategy), short(s.Description),
		})
	}
	return table(w, []string{"NAME", "PIPELINE", "ARTIFACTS", "PROMOTIONS", "ON FAILURE", "DESCRIPTION"}, rows)
}

func environmentTable(w io.Writer, list []*deploydb.Environment) error {
	rows := make([][]string, 0, len(list))
	for _, e := range list {
		prod := "no"
		if e.Production {
			prod = "yes"
		}
		rows = append(rows, []string{e.Ident, prod, short(e.Description)})
	}
	return table(w, []string{"NAME", "PRODUCTION", "DESCRIPTION"}, rows)
}

// stagesSummary returns "integ(smoke) -> staging(smoke) -> prod".
func stagesSummary(stages []deploydb.PipelineStage) string {
	parts := make([]string, 0, len(stages))
	for _, s := range stages {
		p := s.Environment
		if len(s.Promotions) > 0 {
			p += "(" + strings.Join(s.Promotions, ",") + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " -> ")
}

func pipelineTable(w io.Writer, list []*deploydb.Pipeline) error {
	rows := make([][]string, 0, len(list))
	for _, p := range list {
		rows = append(rows, []string{p.Ident, stagesSummary(p.Environments), short(p.Description)})
	}
	return table(w, []string{"NAME", "ENVIRONMENTS", "DESCRIPTION"}, rows)
}

func promotionTable(w io.Writer, list []*deploydb.Promotion) error {
	rows := make([][]string, 0, len(list))
	for _, p := range list {
		rows = append(rows, []string{p.Ident, p.Type, short(p.Description)})
	}
	return table(w, []string{"NAME", "TYPE", "DESCRIPTION"}, rows)
}

// plural returns "1 service" or "2 services".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
