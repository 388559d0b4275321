package httpapi

import (
	"net/http"
	"slices"

	"github.com/deploydb/deploydb"
)

// route is one entry of the API surface: how it is served and how it is
// described in the OpenAPI document. The whole API is the table below.
type route struct {
	Method  string
	Path    string // net/http ServeMux pattern path
	Summary string
	Handle  func(s *Server, w http.ResponseWriter, r *http.Request) error
	// Request is the JSON body type, nil when the route takes none.
	Request any
	// RequestType is the body's media type when it is not one JSON value
	// (application/x-ndjson: one Request a line).
	RequestType string
	// Response is the success body type, nil for none; Status its status.
	Response any
	Status   int
	// Query names the query parameters the route reads.
	Query []param
	// Errors lists the error statuses the route may answer with, beyond
	// 500 and 503 which any route may.
	Errors []int
	// Idempotent writes honour the Idempotency-Key header.
	Idempotent bool
	// ETag reads answer with an ETag, and 304 Not Modified, without a
	// body, to a request whose If-None-Match names it.
	ETag bool
	// Scope is what the caller's token must allow (DESIGN.md §7); empty
	// for the routes anyone may call.
	Scope deploydb.Scope
}

// param describes a query parameter.
type param struct {
	Name, Type, Description string
}

var (
	pageParams = []param{
		{"pageNumber", "integer", "0-based page number (default 0)"},
		{"perPageSize", "integer", "page size, 1 to 1000 (default 20)"},
	}
	deploymentParams = append([]param{
		{"service", "string", "only deployments of this service"},
		{"environment", "string", "only deployments to this environment"},
		{"status", "string", "only deployments in this status"},
		{"from", "string", "RFC 3339: only deployments created at or after this (an imported one is created when it started)"},
		{"to", "string", "RFC 3339: only deployments created before this"},
		{"order", "string", "asc for oldest first (default desc: newest first)"},
		{"cursor", "integer", "the X-Next-Cursor of the page before: the list goes on after that deployment (instead of pageNumber)"},
	}, pageParams...)
)

// routes is the whole HTTP API: the table below, then the event log's and
// the configuration's entries (events.go, config_handlers.go).
var routes = slices.Concat(apiRoutes, eventRoutes, configRoutes, cdeventsRoutes)

// apiRoutes are the records, reports and operator actions.
var apiRoutes = []route{
	{Method: "GET", Path: "/healthz", Summary: "Liveness: the process serves requests", Handle: (*Server).health, Response: Health{}, Status: 200},
	{Method: "GET", Path: "/readyz", Summary: "Readiness: a configuration is loaded and the database answers (within 2 s)", Handle: (*Server).ready, Response: Health{}, Status: 200},
	{Method: "GET", Path: "/api/openapi.json", Scope: deploydb.ScopeRead, Summary: "This API's OpenAPI 3.1 description", Handle: (*Server).openapi, Response: map[string]any{}, Status: 200},

	{Method: "POST", Path: "/api/artifacts", Scope: deploydb.ScopeArtifactsWrite, Summary: "Publish an artifact: creates one flow per consuming service and activates its first environment", Handle: (*Server).publishArtifact,
		Request: ArtifactInput{}, Response: deploydb.Artifact{}, Status: 201, Errors: []int{400, 404, 409, 413, 422}, Idempotent: true},
	{Method: "GET", Path: "/api/artifacts", Scope: deploydb.ScopeRead, Summary: "List artifacts, newest first", Handle: (*Server).listArtifacts,
		Response: []deploydb.Artifact{}, Status: 200, Errors: []int{400},
		Query: append([]param{{"query", "string", "substring of group, name or version"}}, pageParams...)},
	{Method: "GET", Path: "/api/artifacts/{id}", Scope: deploydb.ScopeRead, Summary: "One artifact", Handle: (*Server).getArtifact, Response: deploydb.Artifact{}, Status: 200, Errors: []int{400, 404}},
	{Method: "PATCH", Path: "/api/artifacts/{id}", Scope: deploydb.ScopeArtifactsWrite, Summary: "Not allowed: artifacts are immutable", Handle: immutable, Status: 405},
	{Method: "DELETE", Path: "/api/artifacts/{id}", Scope: deploydb.ScopeArtifactsWrite, Summary: "Not allowed: artifacts are immutable", Handle: immutable, Status: 405},
	{Method: "GET", Path: "/api/artifacts/by-module/{module}", Scope: deploydb.ScopeRead, Summary: "Artifacts of group:name, newest first", Handle: (*Server).artifactsByModule,
		Response: []deploydb.Artifact{}, Status: 200, Errors: []int{400}, Query: pageParams},
	{Method: "GET", Path: "/api/artifacts/by-module/{module}/latest", Scope: deploydb.ScopeRead, Summary: "The newest artifact of group:name", Handle: (*Server).latestArtifact,
		Response: deploydb.Artifact{}, Status: 200, Errors: []int{400, 404}},

	{Method: "GET", Path: "/api/deployments", Scope: deploydb.ScopeRead, Summary: "List deployments", Handle: (*Server).listDeployments, Response: []deploydb.Deployment{}, Status: 200, Errors: []int{400}, Query: deploymentParams},
	{Method: "GET", Path: "/api/deployments/latest", Scope: deploydb.ScopeRead, Summary: "The newest deployment", Handle: (*Server).latestDeployment, Response: deploydb.Deployment{}, Status: 200, Errors: []int{404}},
	{Method: "GET", Path: "/api/deployments/{id}", Scope: deploydb.ScopeRead, Summary: "One deployment with its promotion results", Handle: (*Server).getDeployment, Response: deploydb.Deployment{}, Status: 200, Errors: []int{400, 404}},
	{Method: "PATCH", Path: "/api/deployments/{id}", Scope: deploydb.ScopeDeploymentsWrite, Summary: "An orchestrator reports STARTED, COMPLETED or FAILED", Handle: (*Server).reportDeployment,
		Request: DeploymentInput{}, Response: deploydb.Deployment{}, Status: 200, Errors: []int{400, 404, 409, 413, 422}, Idempotent: true},
	{Method: "GET", Path: "/api/deployments/by-artifact/{id}", Scope: deploydb.ScopeRead, Summary: "Deployments of an artifact", Handle: (*Server).deploymentsByArtifact, Response: []deploydb.Deployment{}, Status: 200, Errors: []int{400}, Query: deploymentParams},
	{Method: "GET", Path: "/api/deployments/by-service/{service}", Scope: deploydb.ScopeRead, Summary: "Deployments of a service: its history", Handle: (*Server).deploymentsByService, Response: []deploydb.Deployment{}, Status: 200, Errors: []int{400}, Query: deploymentParams},
	{Method: "POST", Path: "/api/deployments/{id}/promotions", Scope: deploydb.ScopePromotionsWrite, Summary: "A test job reports a promotion result", Handle: (*Server).reportPromotion,
		Request: PromotionInput{}, Response: deploydb.PromotionResult{}, Status: 201, Errors: []int{400, 404, 409, 413, 422}, Idempotent: true},
	{Method: "GET", Path: "/api/deployments/{id}/promotions/{resultId}", Scope: deploydb.ScopeRead, Summary: "One promotion result", Handle: (*Server).getPromotionResult, Response: deploydb.PromotionResult{}, Status: 200, Errors: []int{400, 404}},

	{Method: "GET", Path: "/api/environments", Scope: deploydb.ScopeRead, Summary: "Environments as configured, with their locks", Handle: (*Server).listEnvironments, Response: []EnvironmentView{}, Status: 200},
	{Method: "GET", Path: "/api/environments/{name}", Scope: deploydb.ScopeRead, Summary: "One environment, with its lock", Handle: (*Server).getEnvironment, Response: EnvironmentView{}, Status: 200, Errors: []int{404}},
	{Method: "POST", Path: "/api/environments/{name}/lock", Scope: deploydb.ScopeAdmin, Summary: "Lock an environment: hold activation there (nothing running is touched)", Handle: (*Server).lockEnvironment,
		Request: ActionInput{}, Response: deploydb.Lock{}, Status: 201, Errors: []int{400, 404, 409, 413, 422}, Idempotent: true},
	{Method: "DELETE", Path: "/api/environments/{name}/lock", Scope: deploydb.ScopeAdmin, Summary: "Unlock an environment: what waited there is activated", Handle: (*Server).unlockEnvironment,
		Status: 204, Errors: []int{400, 404, 413}},
	{Method: "GET", Path: "/api/environments/{name}/deployments", Scope: deploydb.ScopeRead, Summary: "Deployments to an environment", Handle: (*Server).environmentDeployments, Response: []deploydb.Deployment{}, Status: 200, Errors: []int{400, 404}, Query: deploymentParams},
	{Method: "GET", Path: "/api/services", Scope: deploydb.ScopeRead, Summary: "Services as configured", Handle: (*Server).listServices, Response: []deploydb.Service{}, Status: 200},
	{Method: "GET", Path: "/api/services/{name}", Scope: deploydb.ScopeRead, Summary: "One service", Handle: (*Server).getService, Response: deploydb.Service{}, Status: 200, Errors: []int{404}},
	{Method: "GET", Path: "/api/pipelines", Scope: deploydb.ScopeRead, Summary: "Pipelines as configured", Handle: (*Server).listPipelines, Response: []deploydb.Pipeline{}, Status: 200},
	{Method: "GET", Path: "/api/pipelines/{name}", Scope: deploydb.ScopeRead, Summary: "One pipeline", Handle: (*Server).getPipeline, Response: deploydb.Pipeline{}, Status: 200, Errors: []int{404}},
	{Method: "GET", Path: "/api/promotions", Scope: deploydb.ScopeRead, Summary: "Promotions as configured", Handle: (*Server).listPromotions, Response: []deploydb.Promotion{}, Status: 200},
	{Method: "GET", Path: "/api/promotions/{name}", Scope: deploydb.ScopeRead, Summary: "One promotion", Handle: (*Server).getPromotion, Response: deploydb.Promotion{}, Status: 200, Errors: []int{404}},

	{Method: "GET", Path: "/api/flows", Scope: deploydb.ScopeRead, Summary: "List flows with their deployments, newest first", Handle: (*Server).listFlows, Response: []deploydb.Flow{}, Status: 200, Errors: []int{400},
		Query: append([]param{{"service", "string", "only flows of this service"}, {"artifact", "integer", "only flows of this artifact"}, {"order", "string", "asc for oldest first"}}, pageParams...)},
	{Method: "GET", Path: "/api/flows/{id}", Scope: deploydb.ScopeRead, Summary: "One flow with its deployments in pipeline order", Handle: (*Server).getFlow, Response: deploydb.Flow{}, Status: 200, Errors: []int{400, 404}},
	{Method: "POST", Path: "/api/flows/{id}/cancel", Scope: deploydb.ScopeAdmin, Summary: "Cancel a flow: its deployments that have not completed become CANCELLED", Handle: (*Server).cancelFlow,
		Request: ActionInput{}, Response: deploydb.Flow{}, Status: 200, Errors: []int{400, 404, 409, 413, 422}, Idempotent: true},

	{Method: "POST", Path: "/api/deployments", Scope: deploydb.ScopeAdmin, Summary: "Hotfix: deploy a chosen artifact to an environment out of pipeline order", Handle: (*Server).hotfix,
		Request: HotfixInput{}, Response: deploydb.Deployment{}, Status: 201, Errors: []int{400, 404, 413, 422}, Idempotent: true},
	{Method: "POST", Path: "/api/deployments/{id}/retry", Scope: deploydb.ScopeAdmin, Summary: "Retry a FAILED deployment: a new deployment, due again", Handle: (*Server).retryDeployment,
		Request: ActionInput{}, Response: deploydb.Deployment{}, Status: 201, Errors: []int{400, 404, 409, 413, 422}, Idempotent: true},
	{Method: "POST", Path: "/api/deployments/{id}/rollback", Scope: deploydb.ScopeAdmin, Summary: "Roll the deployment's service back to its last known good artifact in that environment", Handle: (*Server).rollbackDeployment,
		Request: ActionInput{}, Response: deploydb.Deployment{}, Status: 201, Errors: []int{400, 404, 409, 413, 422}, Idempotent: true},

	{Method: "GET", Path: "/api/webhook-deliveries", Scope: deploydb.ScopeRead, Summary: "Webhook deliveries, newest first", Handle: (*Server).listDeliveries,
		Response: []DeliveryView{}, Status: 200, Errors: []int{400},
		Query: append([]param{{"status", "string", "pending, delivered or failed"}, {"hook", "string", "only deliveries whose URL contains this"}, {"deployment", "integer", "only deliveries about this deployment"}}, pageParams...)},
	{Method: "GET", Path: "/api/webhook-deliveries/{id}", Scope: deploydb.ScopeRead, Summary: "One webhook delivery with every attempt", Handle: (*Server).getDelivery,
		Response: DeliveryView{}, Status: 200, Errors: []int{400, 404}},
	{Method: "POST", Path: "/api/webhook-deliveries/{id}/redeliver", Scope: deploydb.ScopeAdmin, Summary: "Queue a failed (or delivered) webhook delivery again, due now", Handle: (*Server).redeliver,
		Request: ActionInput{}, Response: DeliveryView{}, Status: 200, Errors: []int{400, 404, 409, 413, 422}, Idempotent: true},

	{Method: "GET", Path: "/api/status", Scope: deploydb.ScopeRead, Summary: "The service × environment matrix", Handle: (*Server).status, Response: Status{}, Status: 200, ETag: true, Errors: []int{400},
		Query: []param{{"service", "string", "only services whose name contains this"}, {"at", "string", "RFC 3339: the matrix as it was at that past instant, from the history (locks from their events, freezes as configured now)"}}},

	{Method: "POST", Path: "/api/import", Scope: deploydb.ScopeAdmin, Summary: "Import past deployments from another tool: NDJSON, one deployment a line; all lines or (422, each bad line named) none; importing again changes nothing", Handle: (*Server).importHistory,
		Request: deploydb.ImportRecord{}, RequestType: "application/x-ndjson", Response: ImportResponse{}, Status: 200, Errors: []int{400, 409, 413, 422}},
	{Method: "GET", Path: "/api/insights/dora", Scope: deploydb.ScopeRead, Summary: "The DORA metrics of an environment over [from, to), from the deployments that finished there", Handle: (*Server).dora,
		Response: DORAReport{}, Status: 200, Errors: []int{400, 404},
		Query: []param{
			{"environment", "string", "the environment (default: the one marked production: true)"},
			{"service", "string", "one service (default: all)"},
			{"from", "string", "RFC 3339 (default: 30 days before to)"},
			{"to", "string", "RFC 3339, excluded (default: now)"},
		}},
	{Method: "GET", Path: "/api/diff", Scope: deploydb.ScopeRead, Summary: "How two environments differ: each service whose current version differs, with the commits between when known", Handle: (*Server).diff,
		Response: deploydb.EnvironmentDiff{}, Status: 200, Errors: []int{400, 404},
		Query: []param{{"from", "string", "an environment, such as staging"}, {"to", "string", "an environment, such as prod"}}},
}

// RouteInfo describes one route of the API: what it is and the scope a
// caller needs ("" for none).
type RouteInfo struct {
	Method, Path string
	Scope        deploydb.Scope
	// ScopeByEvent is set on POST /api/cdevents, whose scope is that of
	// what the event records.
	ScopeByEvent bool
}

// Routes lists the API's routes, for tests and tools that check them all.
func Routes() []RouteInfo {
	out := make([]RouteInfo, 0, len(routes))
	for _, rt := range routes {
		ri := RouteInfo{Method: rt.Method, Path: rt.Path, Scope: rt.Scope}
		if rt.Scope == scopeByEvent {
			ri.Scope, ri.ScopeByEvent = "", true
		}
		out = append(out, ri)
	}
	return out
}
