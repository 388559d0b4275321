package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/deploydb/deploydb"
)

// PublishArtifact publishes an artifact: the server creates one flow per
// service that consumes group:name and activates each flow's first
// environment. Returns EINVALID for missing or too long fields, ECONFLICT
// if (group, name, version) is already published, ENOTFOUND if no service
// consumes group:name. Only Group, Name, Version and SourceURL of a are
// sent.
func (c *Client) PublishArtifact(ctx context.Context, a deploydb.Artifact, opts ...CallOption) (*deploydb.Artifact, error) {
	in := struct {
		Group     string            `json:"group"`
		Name      string            `json:"name"`
		Version   string            `json:"version"`
		SourceURL string            `json:"sourceUrl"`
		Commits   []deploydb.Commit `json:"commits,omitempty"`
	}{a.Group, a.Name, a.Version, a.SourceURL, a.Commits}
	var out deploydb.Artifact
	if err := c.do(ctx, http.MethodPost, "/api/artifacts", nil, in, &out, opts...); err != nil {
		return nil, err
	}
	return &out, nil
}

// Artifact returns one artifact. Returns ENOTFOUND if it does not exist.
func (c *Client) Artifact(ctx context.Context, id int64) (*deploydb.Artifact, error) {
	if err := checkID("artifact id", id); err != nil {
		return nil, err
	}
	var out deploydb.Artifact
	if err := c.do(ctx, http.MethodGet, "/api/artifacts/"+itoa(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Artifacts returns one page of artifacts, newest first: those of
// f.Group:f.Name when both are set, else those matching f.Query. Returns
// EBADREQUEST when f sets a module and a query together, or only half a
// module.
func (c *Client) Artifacts(ctx context.Context, f deploydb.ArtifactFilter) ([]*deploydb.Artifact, error) {
	q := url.Values{}
	pageQuery(q, f.Page)
	path := "/api/artifacts"
	switch {
	case f.Group != "" || f.Name != "":
		if f.Group == "" || f.Name == "" {
			return nil, deploydb.Errorf(deploydb.EBADREQUEST, "an artifact filter needs both group and name, or neither")
		}
		if f.Query != "" {
			return nil, deploydb.Errorf(deploydb.EBADREQUEST, "an artifact filter takes a module (group and name) or a query, not both")
		}
		path += "/by-module/" + module(f.Group, f.Name)
	case f.Query != "":
		q.Set("query", f.Query)
	}
	var out []*deploydb.Artifact
	if err := c.do(ctx, http.MethodGet, path, q, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// LatestArtifact returns the newest artifact of group:name. Returns
// ENOTFOUND if none was published.
func (c *Client) LatestArtifact(ctx context.Context, group, name string) (*deploydb.Artifact, error) {
	if group == "" || name == "" {
		return nil, deploydb.Errorf(deploydb.EBADREQUEST, "a module needs a group and a name")
	}
	var out deploydb.Artifact
	if err := c.do(ctx, http.MethodGet, "/api/artifacts/by-module/"+module(group, name)+"/latest", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Deployment returns one deployment with its promotion results. Returns
// ENOTFOUND if it does not exist.
func (c *Client) Deployment(ctx context.Context, id int64) (*deploydb.Deployment, error) {
	if err := checkID("deployment id", id); err != nil {
		return nil, err
	}
	var out deploydb.Deployment
	if err := c.do(ctx, http.MethodGet, "/api/deployments/"+itoa(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// LatestDeployment returns the newest deployment. Returns ENOTFOUND if
// there is none.
func (c *Client) LatestDeployment(ctx context.Context) (*deploydb.Deployment, error) {
	var out deploydb.Deployment
	if err := c.do(ctx, http.MethodGet, "/api/deployments/latest", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Deployments returns one page of deployments matching f, newest first
// unless f.Ascending. The API cannot select by flow: a filter with f.Flow
// set returns EBADREQUEST (read the flow with Flow instead).
func (c *Client) Deployments(ctx context.Context, f deploydb.DeploymentFilter) ([]*deploydb.Deployment, error) {
	if f.Flow != 0 {
		return nil, deploydb.Errorf(deploydb.EBADREQUEST, "deployments cannot be listed by flow; read the flow instead")
	}
	path := "/api/deployments"
	if f.Artifact != 0 {
		if err := checkID("artifact id", f.Artifact); err != nil {
			return nil, err
		}
		path += "/by-artifact/" + itoa(f.Artifact)
	}
	return c.deployments(ctx, path, f)
}

// EnvironmentDeployments returns one page of the deployments to
// environment name matching f (whose Environment is ignored), newest first
// unless f.Ascending. Returns ENOTFOUND if the environment is not
// configured.
func (c *Client) EnvironmentDeployments(ctx context.Context, name string, f deploydb.DeploymentFilter) ([]*deploydb.Deployment, error) {
	if err := checkName("environment", name); err != nil {
		return nil, err
	}
	f.Environment = ""
	return c.deployments(ctx, "/api/environments/"+url.PathEscape(name)+"/deployments", f)
}

func (c *Client) deployments(ctx context.Context, path string, f deploydb.DeploymentFilter) ([]*deploydb.Deployment, error) {
	q := url.Values{}
	setIf(q, "service", f.Service)
	setIf(q, "environment", f.Environment)
	setIf(q, "status", string(f.Status))
	if !f.From.IsZero() {
		q.Set("from", deploydb.NewTime(f.From).String())
	}
	if !f.To.IsZero() {
		q.Set("to", deploydb.NewTime(f.To).String())
	}
	if f.Cursor != 0 {
		q.Set("cursor", itoa(f.Cursor))
	}
	if f.Ascending {
		q.Set("order", "asc")
	}
	pageQuery(q, f.Page)
	var out []*deploydb.Deployment
	if err := c.do(ctx, http.MethodGet, path, q, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// ReportDeployment reports what an orchestrator did with a deployment:
// STARTED, COMPLETED or FAILED. Returns the deployment after the change.
// Returns EBADREQUEST for another status, ENOTFOUND for an unknown
// deployment, ECONFLICT when the deployment's status does not allow the
// transition (the error's Current then holds the deployment as it is, as
// JSON in a json.RawMessage).
func (c *Client) ReportDeployment(ctx context.Context, id int64, status deploydb.DeploymentStatus, opts ...CallOption) (*deploydb.Deployment, error) {
	if err := checkID("deployment id", id); err != nil {
		return nil, err
	}
	in := struct {
		Status deploydb.DeploymentStatus `json:"status"`
	}{status}
	var out deploydb.Deployment
	if err := c.do(ctx, http.MethodPatch, "/api/deployments/"+itoa(id), nil, in, &out, opts...); err != nil {
		return nil, err
	}
	return &out, nil
}

// ReportPromotion records a promotion result (SUCCESS or FAILED) for
// r.Deployment; r.Actor is not sent, the server knows its caller. Returns
// EBADREQUEST for another status, ENOTFOUND for an unknown deployment or a
// promotion not attached to it, ECONFLICT when the deployment does not
// await that result, EUNAUTHORIZED or EFORBIDDEN for a manual promotion the
// caller may not give.
func (c *Client) ReportPromotion(ctx context.Context, r deploydb.PromotionReport, opts ...CallOption) (*deploydb.PromotionResult, error) {
	if err := checkID("deployment id", r.Deployment); err != nil {
		return nil, err
	}
	in := struct {
		Name    string                   `json:"name"`
		Status  deploydb.PromotionStatus `json:"status"`
		InfoURL string                   `json:"infoUrl,omitempty"`
	}{r.Promotion, r.Status, r.InfoURL}
	var out deploydb.PromotionResult
	if err := c.do(ctx, http.MethodPost, "/api/deployments/"+itoa(r.Deployment)+"/promotions", nil, in, &out, opts...); err != nil {
		return nil, err
	}
	return &out, nil
}

// PromotionResult returns result id of deployment. Returns ENOTFOUND
// unless the result belongs to the deployment.
func (c *Client) PromotionResult(ctx context.Context, deployment, id int64) (*deploydb.PromotionResult, error) {
	if err := checkID("deployment id", deployment); err != nil {
		return nil, err
	}
	if err := checkID("promotion result id", id); err != nil {
		return nil, err
	}
	var out deploydb.PromotionResult
	if err := c.do(ctx, http.MethodGet, "/api/deployments/"+itoa(deployment)+"/promotions/"+itoa(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Flow returns one flow with its deployments in pipeline order. Returns
// ENOTFOUND if it does not exist.
func (c *Client) Flow(ctx context.Context, id int64) (*deploydb.Flow, error) {
	if err := checkID("flow id", id); err != nil {
		return nil, err
	}
	var out deploydb.Flow
	if err := c.do(ctx, http.MethodGet, "/api/flows/"+itoa(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Flows returns one page of flows matching f with their deployments, newest
// first unless f.Ascending.
func (c *Client) Flows(ctx context.Context, f deploydb.FlowFilter) ([]*deploydb.Flow, error) {
	q := url.Values{}
	setIf(q, "service", f.Service)
	if f.Artifact != 0 {
		q.Set("artifact", itoa(f.Artifact))
	}
	if f.Ascending {
		q.Set("order", "asc")
	}
	pageQuery(q, f.Page)
	var out []*deploydb.Flow
	if err := c.do(ctx, http.MethodGet, "/api/flows", q, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Services returns the services as the server's configuration defines them.
func (c *Client) Services(ctx context.Context) ([]*deploydb.Service, error) {
	var out []*deploydb.Service
	if err := c.do(ctx, http.MethodGet, "/api/services", nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Service returns one configured service. Returns ENOTFOUND if it is not
// configured.
func (c *Client) Service(ctx context.Context, name string) (*deploydb.Service, error) {
	var out deploydb.Service
	if err := c.getNamed(ctx, "service", "/api/services/", name, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Environments returns the environments as the server's configuration
// defines them.
func (c *Client) Environments(ctx context.Context) ([]*deploydb.Environment, error) {
	var out []*deploydb.Environment
	if err := c.do(ctx, http.MethodGet, "/api/environments", nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Environment returns one configured environment. Returns ENOTFOUND if it
// is not configured.
func (c *Client) Environment(ctx context.Context, name string) (*deploydb.Environment, error) {
	var out deploydb.Environment
	if err := c.getNamed(ctx, "environment", "/api/environments/", name, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Pipelines returns the pipelines as the server's configuration defines
// them.
func (c *Client) Pipelines(ctx context.Context) ([]*deploydb.Pipeline, error) {
	var out []*deploydb.Pipeline
	if err := c.do(ctx, http.MethodGet, "/api/pipelines", nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Pipeline returns one configured pipeline. Returns ENOTFOUND if it is not
// configured.
func (c *Client) Pipeline(ctx context.Context, name string) (*deploydb.Pipeline, error) {
	var out deploydb.Pipeline
	if err := c.getNamed(ctx, "pipeline", "/api/pipelines/", name, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Promotions returns the promotions as the server's configuration defines
// them.
func (c *Client) Promotions(ctx context.Context) ([]*deploydb.Promotion, error) {
	var out []*deploydb.Promotion
	if err := c.do(ctx, http.MethodGet, "/api/promotions", nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Promotion returns one configured promotion. Returns ENOTFOUND if it is
// not configured.
func (c *Client) Promotion(ctx context.Context, name string) (*deploydb.Promotion, error) {
	var out deploydb.Promotion
	if err := c.getNamed(ctx, "promotion", "/api/promotions/", name, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Health checks that the server is up and serving requests. Returns
// EUNAVAILABLE if it cannot be reached.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
}

// getNamed reads one configured model by name.
func (c *Client) getNamed(ctx context.Context, what, prefix, name string, out any) error {
	if err := checkName(what, name); err != nil {
		return err
	}
	return c.do(ctx, http.MethodGet, prefix+url.PathEscape(name), nil, nil, out)
}

// module returns the path segment of group:name, each part escaped.
func module(group, name string) string {
	return url.PathEscape(group) + ":" + url.PathEscape(name)
}

// pageQuery adds the page parameters that differ from the server's
// defaults.
func pageQuery(q url.Values, p deploydb.Page) {
	if p.Number != 0 {
		q.Set("pageNumber", strconv.Itoa(p.Number))
	}
	if p.Size != 0 {
		q.Set("perPageSize", strconv.Itoa(p.Size))
	}
}

func setIf(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}

// checkID refuses ids the API would answer 400 for, without a round trip.
func checkID(what string, id int64) error {
	if id <= 0 {
		return deploydb.Errorf(deploydb.EBADREQUEST, "%s must be a positive integer, not %d", what, id)
	}
	return nil
}

// checkName refuses an empty name, which would address the list instead.
func checkName(what, name string) error {
	if name == "" {
		return deploydb.Errorf(deploydb.EBADREQUEST, "%s name is required", what)
	}
	return nil
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }
