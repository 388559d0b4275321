package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
)

// TestMatrixAt: the matrix page as it was at a past instant (?at=), from
// imported history: each cell then, said in the page's heading.
func TestMatrixAt(t *testing.T) {
	s := newSite(t)
	t0 := time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)
	line := func(n int, version string, status deploydb.DeploymentStatus, finished time.Duration) deploydb.ImportRecord {
		return deploydb.ImportRecord{Line: n, Group: "com.example", Name: "billing", Version: version, SourceURL: "https://ci.example/billing/" + version,
			Service: "billing", Environment: "prod", Status: status,
			StartedAt: deploydb.NewTime(t0.Add(finished - 10*time.Minute)), FinishedAt: deploydb.NewTime(t0.Add(finished))}
	}
	if _, err := s.store.Import(t.Context(), s.cfg, []deploydb.ImportRecord{
		line(1, "1.0", deploydb.DeploymentSuccess, time.Hour),
		line(2, "1.1", deploydb.DeploymentFailed, 2*time.Hour),
	}, "alice"); err != nil {
		t.Fatal(err)
	}
	prod := func(page string) string {
		t.Helper()
		row := rowOf(page, "billing")
		cells := strings.Split(row, "<td")
		return cells[len(cells)-1] // prod is the last column
	}
	for _, tt := range []struct {
		at, want string
	}{
		{"2026-10-01T08:00", "nothing deployed"},
		{"2026-10-01T10:30", `<span class="v">1.0</span> <span class="s">verified</span>`},
		{"2026-10-01T11:30:00Z", `<span class="s">failed: 1.1</span>`},
	} {
		status, _, page := s.get(t, "/?at="+tt.at)
		if status != 200 {
			t.Fatalf("GET /?at=%s = %d:\n%s", tt.at, status, page)
		}
		if cell := prod(page); !strings.Contains(cell, tt.want) {
			t.Errorf("at %s, billing in prod shows %q, want %q", tt.at, cell, tt.want)
		}
		if !strings.Contains(page, `id="past">As it was at `) || !strings.Contains(page, `name="at" type="datetime-local" value="`+tt.at[:16]+`"`) {
			t.Errorf("at %s: the page does not say it is of the past, or its field lost the instant", tt.at)
		}
	}
	// Now, the failure is what prod shows, and nothing says "as it was";
	// the live page hears of imports too.
	_, _, page := s.get(t, "/")
	if !strings.Contains(page, "history.imported") {
		t.Errorf("the live page does not listen for imports")
	}
	if !strings.Contains(prod(page), "failed: 1.1") || strings.Contains(page, `id="past"`) {
		t.Errorf("the matrix of now: %q", prod(page))
	}
	// The filter applies to the past too.
	_, _, page = s.get(t, "/?service=check&at=2026-10-01T10:30")
	if rowOf(page, "billing") != "" || rowOf(page, "checkout") == "" {
		t.Errorf("filtered by check at an instant: want checkout only")
	}
	for _, bad := range []string{"yesterday", "2999-01-01T00:00"} {
		if status, _, page := s.get(t, "/?at="+bad); status != 400 || !strings.Contains(page, "at ") {
			t.Errorf("GET /?at=%s = %d:\n%s", bad, status, page)
		}
	}
}
