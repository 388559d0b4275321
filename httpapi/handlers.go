package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/deploydb/deploydb"
)

// ArtifactInput is the body of POST /api/artifacts.
type ArtifactInput struct {
	Group     string `json:"group"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	SourceURL string `json:"sourceUrl"`
	// Commits are the commits the artifact brings (optional): lead times
	// are measured from the oldest, and environment diffs list them.
	Commits []deploydb.Commit `json:"commits,omitempty"`
}

// DeploymentInput is the body of PATCH /api/deployments/{id}.
type DeploymentInput struct {
	Status string `json:"status" enum:"STARTED,COMPLETED,FAILED"`
}

// PromotionInput is the body of POST /api/deployments/{id}/promotions.
type PromotionInput struct {
	Name    string `json:"name"`
	Status  string `json:"status" enum:"SUCCESS,FAILED,FAILURE"`
	InfoURL string `json:"infoUrl"`
}

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string `json:"status"`
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	encode(w, http.StatusOK, Health{Status: "ok"})
	return nil
}

// ReadyTimeout bounds how long /readyz waits for the database: one that
// has not answered by then is not ready, and the probe gets its answer
// before its own timeout.
const ReadyTimeout = 2 * time.Second

// ready answers whether DeployDB can serve (DESIGN.md §4): a configuration
// is loaded and the database answers. A 503 names what is not ready.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) error {
	var not []string
	if s.config() == nil {
		not = append(not, "no configuration is loaded")
	}
	ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log(r).Warn("not ready: the database does not answer", "err", err)
		why := "the database does not answer"
		if deploydb.ErrorCode(err) == deploydb.EUNAVAILABLE {
			why = deploydb.ErrorMessage(err) // names the database and why
		}
		not = append(not, why)
	}
	if len(not) > 0 {
		return deploydb.Errorf(deploydb.EUNAVAILABLE, "not ready: %s", strings.Join(not, "; "))
	}
	encode(w, http.StatusOK, Health{Status: "ok"})
	return nil
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.spec)
	return nil
}

func immutable(s *Server, w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Allow", "GET, HEAD")
	writeProblem(w, Problem{Status: http.StatusMethodNotAllowed, Code: deploydb.EBADREQUEST, Detail: "artifacts are immutable: publish a new version instead"})
	return nil
}

func (s *Server) publishArtifact(w http.ResponseWriter, r *http.Request) error {
	var in ArtifactInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	a, _, err := s.store.PublishArtifact(r.Context(), s.config(), deploydb.Artifact{Group: in.Group, Name: in.Name, Version: in.Version, SourceURL: in.SourceURL, Commits: in.Commits}, actor(r))
	if err != nil {
		return err
	}
	w.Header().Set("Location", fmt.Sprintf("/api/artifacts/%d", a.ID))
	encode(w, http.StatusCreated, a)
	return nil
}

func (s *Server) listArtifacts(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	list, err := s.store.FindArtifacts(r.Context(), deploydb.ArtifactFilter{Query: r.URL.Query().Get("query"), Page: p})
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, list)
	return nil
}

func (s *Server) getArtifact(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	a, err := s.store.FindArtifact(r.Context(), id)
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, a)
	return nil
}

func (s *Server) artifactsByModule(w http.ResponseWriter, r *http.Request) error {
	group, name, err := splitModule(r.PathValue("module"))
	if err != nil {
		return err
	}
	p, err := page(r)
	if err != nil {
		return err
	}
	list, err := s.store.FindArtifacts(r.Context(), deploydb.ArtifactFilter{Group: group, Name: name, Page: p})
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, list)
	return nil
}

func (s *Server) latestArtifact(w http.ResponseWriter, r *http.Request) error {
	group, name, err := splitModule(r.PathValue("module"))
	if err != nil {
		return err
	}
	list, err := s.store.FindArtifacts(r.Context(), deploydb.ArtifactFilter{Group: group, Name: name, Page: deploydb.Page{Size: 1}})
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return deploydb.Errorf(deploydb.ENOTFOUND, "no artifact of %s:%s", group, name)
	}
	encode(w, http.StatusOK, list[0])
	return nil
}

// deploymentFilter parses the query parameters every deployment list takes.
func deploymentFilter(r *http.Request) (deploydb.DeploymentFilter, error) {
	var f deploydb.DeploymentFilter
	var err error
	if f.Page, err = page(r); err != nil {
		return f, err
	}
	if f.Ascending, err = ascending(r); err != nil {
		return f, err
	}
	q := r.URL.Query()
	f.Service, f.Environment = q.Get("service"), q.Get("environment")
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(p.name); v != "" {
			if *p.t, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return f, badParam(p.name, fmt.Sprintf("must be an RFC 3339 time, not %q", v))
			}
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, badParam("from", "must be before to")
	}
	if f.Cursor, err = queryID(r, "cursor"); err != nil {
		return f, err
	}
	if f.Cursor != 0 && f.Page.Number != 0 {
		return f, badParam("cursor", "pages by cursor or by pageNumber, not both")
	}
	if st := q.Get("status"); st != "" {
		f.Status = deploydb.DeploymentStatus(strings.ToUpper(st))
		if !f.Status.Valid() {
			return f, badParam("status", fmt.Sprintf("must be one of %v, not %q", deploydb.DeploymentStatuses, st))
		}
	}
	return f, nil
}

func (s *Server) findDeployments(w http.ResponseWriter, r *http.Request, f deploydb.DeploymentFilter) error {
	list, err := s.store.FindDeployments(r.Context(), f)
	if err != nil {
		return err
	}
	if len(list) == f.Page.Size && len(list) > 0 {
		// A full page: the next one goes on after its last deployment.
		w.Header().Set(HeaderNextCursor, strconv.FormatInt(list[len(list)-1].ID, 10))
	}
	encode(w, http.StatusOK, list)
	return nil
}

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request) error {
	f, err := deploymentFilter(r)
	if err != nil {
		return err
	}
	return s.findDeployments(w, r, f)
}

func (s *Server) latestDeployment(w http.ResponseWriter, r *http.Request) error {
	list, err := s.store.FindDeployments(r.Context(), deploydb.DeploymentFilter{Page: deploydb.Page{Size: 1}})
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return deploydb.Errorf(deploydb.ENOTFOUND, "no deployment yet")
	}
	encode(w, http.StatusOK, list[0])
	return nil
}

func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	d, err := s.store.FindDeployment(r.Context(), id)
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, d)
	return nil
}

func (s *Server) reportDeployment(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in DeploymentInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	status, err := deploydb.ParseDeploymentReport(strings.ToUpper(in.Status))
	if err != nil {
		return err
	}
	d, err := s.store.ReportDeployment(r.Context(), s.config(), deploydb.DeploymentReport{Deployment: id, Status: status, Actor: actor(r)})
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, d)
	return nil
}

func (s *Server) deploymentsByArtifact(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	f, err := deploymentFilter(r)
	if err != nil {
		return err
	}
	f.Artifact = id
	return s.findDeployments(w, r, f)
}

func (s *Server) deploymentsByService(w http.ResponseWriter, r *http.Request) error {
	f, err := deploymentFilter(r)
	if err != nil {
		return err
	}
	f.Service = r.PathValue("service")
	return s.findDeployments(w, r, f)
}

func (s *Server) reportPromotion(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in PromotionInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if in.Name == "" {
		return &deploydb.Error{Code: deploydb.EINVALID, Message: "name is required: the promotion the result is for",
			Fields: []deploydb.FieldError{{Field: "name", Message: "is required"}}}
	}
	status, err := deploydb.ParsePromotionReport(strings.ToUpper(in.Status))
	if err != nil {
		return err
	}
	if len(in.InfoURL) > deploydb.MaxArtifactFieldLen {
		return &deploydb.Error{Code: deploydb.EINVALID, Message: "infoUrl is too long",
			Fields: []deploydb.FieldError{{Field: "infoUrl", Message: fmt.Sprintf("must be at most %d characters", deploydb.MaxArtifactFieldLen)}}}
	}
	res, err := s.store.ReportPromotion(r.Context(), s.config(), deploydb.PromotionReport{Deployment: id, Promotion: in.Name, Status: status, InfoURL: in.InfoURL, Actor: actor(r), Caller: callerOf(r)})
	if err != nil {
		return err
	}
	w.Header().Set("Location", fmt.Sprintf("/api/deployments/%d/promotions/%d", id, res.ID))
	encode(w, http.StatusCreated, res)
	return nil
}

func (s *Server) getPromotionResult(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	rid, err := pathID(r, "resultId")
	if err != nil {
		return err
	}
	res, err := s.store.FindPromotionResult(r.Context(), id, rid)
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, res)
	return nil
}

// sorted returns the values of a config map ordered by ident.
func sorted[T any](m map[string]*T) []*T {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*T, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

// one returns the named config model or ENOTFOUND.
func one[T any](m map[string]*T, kind, name string) (*T, error) {
	v, ok := m[name]
	if !ok {
		return nil, deploydb.Errorf(deploydb.ENOTFOUND, "%s %q is not configured", kind, name)
	}
	return v, nil
}

func (s *Server) environmentDeployments(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if _, err := one(s.config().Environments, "environment", name); err != nil {
		return err
	}
	f, err := deploymentFilter(r)
	if err != nil {
		return err
	}
	f.Environment = name
	return s.findDeployments(w, r, f)
}

func (s *Server) listServices(w http.ResponseWriter, r *http.Request) error {
	encode(w, http.StatusOK, sorted(s.config().Services))
	return nil
}

func (s *Server) getService(w http.ResponseWriter, r *http.Request) error {
	v, err := one(s.config().Services, "service", r.PathValue("name"))
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, v)
	return nil
}

func (s *Server) listPipelines(w http.ResponseWriter, r *http.Request) error {
	encode(w, http.StatusOK, sorted(s.config().Pipelines))
	return nil
}

func (s *Server) getPipeline(w http.ResponseWriter, r *http.Request) error {
	v, err := one(s.config().Pipelines, "pipeline", r.PathValue("name"))
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, v)
	return nil
}

func (s *Server) listPromotions(w http.ResponseWriter, r *http.Request) error {
	encode(w, http.StatusOK, sorted(s.config().Promotions))
	return nil
}

func (s *Server) getPromotion(w http.ResponseWriter, r *http.Request) error {
	v, err := one(s.config().Promotions, "promotion", r.PathValue("name"))
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, v)
	return nil
}

func (s *Server) listFlows(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	asc, err := ascending(r)
	if err != nil {
		return err
	}
	art, err := queryID(r, "artifact")
	if err != nil {
		return err
	}
	list, err := s.store.FindFlows(r.Context(), deploydb.FlowFilter{Service: r.URL.Query().Get("service"), Artifact: art, Ascending: asc, Page: p})
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, list)
	return nil
}

func (s *Server) getFlow(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	f, err := s.store.FindFlow(r.Context(), id)
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, f)
	return nil
}
