package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/insights"
)

// MaxImportBytes is the largest import file POST /api/import reads:
// deploydb.MaxImportBytes.
const MaxImportBytes = deploydb.MaxImportBytes

// ImportTimeout is how long an import may take to be read and stored:
// longer than other requests.
const ImportTimeout = 10 * time.Minute

// ImportResponse is the answer to POST /api/import.
type ImportResponse = deploydb.ImportResult

// importHistory reads an NDJSON file of past deployments, one a line, and
// imports them: all of them, or (422) none, with every bad line named.
func (s *Server) importHistory(w http.ResponseWriter, r *http.Request) error {
	// A large file takes longer to send and to store than the server's
	// timeouts allow other requests (thousands of deployments a second
	// on SQLite, hundreds on PostgreSQL).
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(ImportTimeout)
	_ = rc.SetReadDeadline(deadline) // not every ResponseWriter has deadlines
	_ = rc.SetWriteDeadline(deadline)
	cfg := s.config()
	rs, err := readImport(w, r, cfg)
	if err != nil {
		return err
	}
	res, err := s.store.Import(r.Context(), cfg, rs, actor(r))
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, res)
	return nil
}

// readImport parses an import body: one JSON object a line; blank lines
// are skipped. Every line that is not a record is reported, by line.
func readImport(w http.ResponseWriter, r *http.Request, cfg *deploydb.Config) ([]deploydb.ImportRecord, error) {
	body := http.MaxBytesReader(w, r.Body, MaxImportBytes)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), MaxImportBytes)
	var rs []deploydb.ImportRecord
	var problems []deploydb.FieldError
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		if len(rs) == deploydb.MaxImportRecords {
			return nil, deploydb.Errorf(deploydb.EINVALID, "an import takes at most %d deployments: split the file (importing is idempotent)", deploydb.MaxImportRecords)
		}
		var rec deploydb.ImportRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			problems = append(problems, lineProblem(line, err))
			continue
		}
		rec.Line = line
		rs = append(rs, rec)
	}
	if err := sc.Err(); err != nil {
		var maxBytes *http.MaxBytesError
		if errors.As(err, &maxBytes) || errors.Is(err, bufio.ErrTooLong) {
			return nil, tooLarge{MaxImportBytes}
		}
		return nil, deploydb.Errorf(deploydb.EBADREQUEST, "reading the import: %v", err)
	}
	if len(problems) > 0 {
		// The lines that parse are checked too, so that one answer names
		// every bad line it can (the store checks them against what is
		// stored once every line parses).
		for i := range rs {
			problems = append(problems, rs[i].Validate(cfg)...)
		}
		return nil, deploydb.ImportError(problems)
	}
	if len(rs) == 0 {
		return nil, deploydb.Errorf(deploydb.EINVALID, "the import holds no deployment: one JSON object a line (NDJSON)")
	}
	return rs, nil
}

// lineProblem says why line is not an import record.
func lineProblem(line int, err error) deploydb.FieldError {
	var typeErr *json.UnmarshalTypeError
	var de *deploydb.Error
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return deploydb.FieldError{Line: line, Field: typeErr.Field, Message: "must be " + jsonKind(typeErr.Type.Kind().String())}
	case errors.As(err, &typeErr):
		return deploydb.FieldError{Line: line, Message: "must be a JSON object, not " + typeErr.Value}
	case errors.As(err, &de):
		// A time that is not RFC 3339: the decoder does not say which
		// field held it.
		return deploydb.FieldError{Line: line, Message: de.Message}
	}
	return deploydb.FieldError{Line: line, Message: "is not valid JSON: " + err.Error()}
}

// DORAReport is the answer to GET /api/insights/dora: deploydb.DORA.
type DORAReport = deploydb.DORA

// DefaultDORAWindow is the window of the DORA metrics when from is not
// given: the 30 days before to.
const DefaultDORAWindow = 30 * 24 * time.Hour

// MaxDORAWindow bounds the window of one DORA report.
const MaxDORAWindow = 400 * 24 * time.Hour

// dora answers GET /api/insights/dora.
func (s *Server) dora(w http.ResponseWriter, r *http.Request) error {
	cfg := s.config()
	q := r.URL.Query()
	env, err := productionEnvironment(cfg, q.Get("environment"))
	if err != nil {
		return err
	}
	service := q.Get("service")
	if service != "" && cfg.Services[service] == nil {
		return deploydb.Errorf(deploydb.ENOTFOUND, "service %q not found", service)
	}
	from, to, err := window(r, s.now())
	if err != nil {
		return err
	}
	rep, err := s.doraReport(r, cfg, env, service, from, to)
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, rep)
	return nil
}

// doraReport computes the DORA report of env (and service) over [from, to).
func (s *Server) doraReport(r *http.Request, cfg *deploydb.Config, env, service string, from, to time.Time) (*DORAReport, error) {
	ds, err := s.store.FindFinished(r.Context(), deploydb.FinishedFilter{Environment: env, Service: service, From: from, To: to})
	if err != nil {
		return nil, err
	}
	d := insights.ComputeDORA(ds, from, to)
	d.Environment, d.Service = env, service
	return &d, nil
}

// productionEnvironment returns env when it is an environment of cfg, or
// when env is empty the one environment marked production: true.
func productionEnvironment(cfg *deploydb.Config, env string) (string, error) {
	if env != "" {
		if cfg.Environments[env] == nil {
			return "", deploydb.Errorf(deploydb.ENOTFOUND, "environment %q not found", env)
		}
		return env, nil
	}
	prod := ProductionEnvironments(cfg)
	switch len(prod) {
	case 1:
		return prod[0], nil
	case 0:
		return "", badParam("environment", "is required: no environment is marked production: true in the configuration")
	}
	return "", badParam("environment", fmt.Sprintf("is required: several environments are marked production: true (%v)", prod))
}

// ProductionEnvironments returns the environments of cfg marked
// production: true, by name.
func ProductionEnvironments(cfg *deploydb.Config) []string {
	var out []string
	for name, e := range cfg.Environments {
		if e.Production {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// window parses from and to (RFC 3339): to defaults to now, from to
// DefaultDORAWindow before to.
func window(r *http.Request, now time.Time) (from, to time.Time, err error) {
	q := r.URL.Query()
	to = now
	if v := q.Get("to"); v != "" {
		if to, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return from, to, badParam("to", fmt.Sprintf("must be an RFC 3339 time, not %q", v))
		}
	}
	from = to.Add(-DefaultDORAWindow)
	if v := q.Get("from"); v != "" {
		if from, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return from, to, badParam("from", fmt.Sprintf("must be an RFC 3339 time, not %q", v))
		}
	}
	from, to = deploydb.NewTime(from).Time, deploydb.NewTime(to).Time
	switch {
	case !from.Before(to):
		return from, to, badParam("from", "must be before to")
	case to.Sub(from) > MaxDORAWindow:
		return from, to, badParam("from", fmt.Sprintf("must be at most %d days before to", int(MaxDORAWindow/(24*time.Hour))))
	}
	return from, to, nil
}

// diff answers GET /api/diff?from=ENV&to=ENV: the services whose current
// version differs between the two environments.
func (s *Server) diff(w http.ResponseWriter, r *http.Request) error {
	cfg := s.config()
	q := r.URL.Query()
	from, to := q.Get("from"), q.Get("to")
	for _, p := range []struct{ name, env string }{{"from", from}, {"to", to}} {
		switch {
		case p.env == "":
			return badParam(p.name, "is required: the name of an environment")
		case cfg.Environments[p.env] == nil:
			return deploydb.Errorf(deploydb.ENOTFOUND, "environment %q not found", p.env)
		}
	}
	if from == to {
		return badParam("to", "must be another environment than from")
	}
	d, err := EnvironmentDiff(r.Context(), s.store, from, to)
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, d)
	return nil
}

// EnvironmentDiff compares what runs in environments from and to (their
// current deployments), by service.
func EnvironmentDiff(ctx context.Context, store deploydb.Store, from, to string) (*deploydb.EnvironmentDiff, error) {
	cells, err := store.FindStatus(ctx)
	if err != nil {
		return nil, err
	}
	type pair struct{ from, to *deploydb.Artifact }
	pairs := map[string]*pair{}
	for _, c := range cells {
		if c.Current == nil || (c.Environment != from && c.Environment != to) {
			continue
		}
		p := pairs[c.Service]
		if p == nil {
			p = &pair{}
			pairs[c.Service] = p
		}
		if c.Environment == from {
			p.from = &c.Current.Artifact
		} else {
			p.to = &c.Current.Artifact
		}
	}
	out := &deploydb.EnvironmentDiff{From: from, To: to, Services: []deploydb.ServiceDiff{}}
	for _, svc := range slices.Sorted(maps.Keys(pairs)) {
		p := pairs[svc]
		if p.from != nil && p.to != nil && p.from.ID == p.to.ID {
			continue
		}
		sd := deploydb.ServiceDiff{Service: svc, Commits: []deploydb.Commit{}}
		if p.from != nil {
			sd.From = ptr(p.from.InMatrix())
		}
		if p.to != nil {
			sd.To = ptr(p.to.InMatrix())
		}
		if p.from != nil && p.to != nil && p.from.Module() == p.to.Module() {
			newer, older := p.from, p.to
			sd.Direction = deploydb.DiffAhead
			if createdBefore(p.from, p.to) {
				newer, older, sd.Direction = p.to, p.from, deploydb.DiffBehind
			}
			cs, err := store.FindCommits(ctx, deploydb.CommitRange{Group: newer.Group, Name: newer.Name, After: older.ID, UpTo: newer.ID, Limit: deploydb.MaxDiffCommits + 1})
			if err != nil {
				return nil, err
			}
			if len(cs) > deploydb.MaxDiffCommits {
				cs, sd.CommitsTruncated = cs[:deploydb.MaxDiffCommits], true
			}
			sd.Commits = cs
		}
		out.Services = append(out.Services, sd)
	}
	return out, nil
}

// createdBefore reports whether artifact a was created before b (by time,
// then id), as FindCommits orders them.
func createdBefore(a, b *deploydb.Artifact) bool {
	if !a.CreatedAt.Equal(b.CreatedAt.Time) {
		return a.CreatedAt.Before(b.CreatedAt.Time)
	}
	return a.ID < b.ID
}

func ptr[T any](v T) *T { return &v }
