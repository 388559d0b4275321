package web

import (
	"net/http"
	"strings"
	"time"

	"github.com/deploydb/deploydb"
)

// matrixView is the data of the matrix page.
type matrixView struct {
	Environments []deploydb.MatrixEnvironment
	Rows         []matrixRow
	// Filter is the service filter (a part of the name), Total the
	// services there are.
	Filter string
	Total  int
	// Span is the number of columns, the service's included.
	Span int
	// At is the past instant the matrix is of (?at=), nil for now; AtInput
	// is it as the form's field shows it.
	At      *deploydb.Time
	AtInput string
}

// atInputFormat is how a datetime-local field sends and shows an instant
// (taken as UTC).
const atInputFormat = "2006-01-02T15:04"

// parseAt reads ?at=: a datetime-local field's value (UTC), or RFC 3339.
func parseAt(s string, now time.Time) (deploydb.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if t, err = time.Parse(atInputFormat, s); err != nil {
			return deploydb.Time{}, deploydb.Errorf(deploydb.EBADREQUEST, "at %q is not a time: give it as 2026-11-20T14:00 (UTC)", s)
		}
	}
	if t.After(now) {
		return deploydb.Time{}, deploydb.Errorf(deploydb.EBADREQUEST, "at %s is in the future", deploydb.NewTime(t))
	}
	return deploydb.NewTime(t), nil
}

type matrixRow struct {
	Service  string
	Pipeline string
	// Cells has one per column, in the columns' order; an environment
	// outside the service's pipeline has an empty one.
	Cells []cellView
}

// cellView is one cell as the page shows it: what runs there and how it
// went, in words (State) as well as in colour (Class).
type cellView struct {
	InPipeline bool
	// Version is the version running there, "" when none.
	Version    string
	Deployment int64
	// State says how the last deployment there went, Class its colour.
	State, Class string
	Since        deploydb.Time
	// InFlight is the deployment under way there, if any.
	InFlight *deploydb.MatrixDeployment
	Locked   bool
}

// matrix renders / : the service × environment matrix.
func (u *UI) matrix(r *http.Request) (string, view, error) {
	ctx, cancel := withTimeout(r)
	defer cancel()
	var m *deploydb.Matrix
	var err error
	var at *deploydb.Time
	if s := strings.TrimSpace(r.URL.Query().Get("at")); s != "" {
		t, err := parseAt(s, time.Now())
		if err != nil {
			return "", view{}, err
		}
		at = &t
		// Every service: the filter below is the page's, as for now.
		all := r.Clone(ctx)
		all.URL.RawQuery = ""
		m, err = u.api.MatrixAt(all, t)
		if err != nil {
			return "", view{}, err
		}
	} else if m, err = u.api.Matrix(ctx, r); err != nil {
		return "", view{}, err
	}
	filter := strings.TrimSpace(r.URL.Query().Get("service"))
	v := matrixView{Environments: m.Environments, Filter: filter, Total: len(m.Services), Span: len(m.Environments) + 1, At: at}
	if at != nil {
		v.AtInput = at.UTC().Format(atInputFormat)
	}
	for _, s := range m.Services {
		if filter != "" && !strings.Contains(s.Service, filter) {
			continue
		}
		v.Rows = append(v.Rows, rowOf(m.Environments, s))
	}
	return "matrix", view{Title: "Status", Nav: "status", Data: v}, nil
}

// rowOf returns the matrix row of s under the columns envs.
func rowOf(envs []deploydb.MatrixEnvironment, s deploydb.MatrixService) matrixRow {
	row := matrixRow{Service: s.Service, Pipeline: s.Pipeline, Cells: make([]cellView, len(envs))}
	for i, e := range envs {
		if c := s.Cell(e.Name); c != nil {
			row.Cells[i] = cellOf(*c)
		}
	}
	return row
}

// cellOf says what a cell shows.
func cellOf(c deploydb.MatrixCell) cellView {
	v := cellView{InPipeline: true, InFlight: c.InFlight, Locked: c.Locked, State: "nothing deployed", Class: "none"}
	if c.InFlight != nil && c.Current != nil && c.InFlight.ID == c.Current.ID {
		// Completed and waiting for its verification: said once.
		v.InFlight = nil
	}
	if c.Current != nil {
		v.Version, v.Deployment, v.Since = c.Current.Artifact.Version, c.Current.ID, c.CurrentSince
		switch c.Current.Status {
		case deploydb.DeploymentSuccess:
			v.State, v.Class = "verified", "ok"
		default:
			v.State, v.Class = "deployed, not verified yet", "pending"
		}
		if c.Current.Reason == deploydb.ReasonRollback {
			v.State += " (rollback)"
		}
	}
	if c.LastAttempt != nil {
		// The latest deployment failed before it completed: what runs
		// there is uncertain.
		v.State, v.Class = "failed: "+c.LastAttempt.Artifact.Version, "failed"
		if v.Since.IsZero() || c.LastAttempt.UpdatedAt.After(v.Since.Time) {
			v.Since = c.LastAttempt.UpdatedAt
		}
	}
	return v
}
