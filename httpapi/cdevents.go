package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cdevents"
)

// CDEventResult is what POST /api/cdevents recorded: exactly one of
// Artifact (artifact.published), Deployment (service.deployed, .upgraded)
// or PromotionResult (testsuiterun.finished, testcaserun.finished).
type CDEventResult struct {
	// Type is the CDEvent's context.type.
	Type string `json:"type"`
	// Recorded says what the event became: artifact, deployment or
	// promotionResult; "unchanged" when DeployDB already had it (a
	// repeated event).
	Recorded        string                    `json:"recorded" enum:"artifact,deployment,promotionResult,unchanged"`
	Artifact        *deploydb.Artifact        `json:"artifact,omitempty"`
	Deployment      *deploydb.Deployment      `json:"deployment,omitempty"`
	PromotionResult *deploydb.PromotionResult `json:"promotionResult,omitempty"`
}

// cdeventsRoutes take CDEvents in.
var cdeventsRoutes = []route{
	{Method: "POST", Path: "/api/cdevents", Scope: scopeByEvent, Summary: "Take in a CDEvent (0.5.1): artifact.published publishes an artifact, service.deployed/upgraded completes the matching deployment, testsuiterun/testcaserun.finished reports a promotion result",
		Handle: (*Server).ingestCDEvent, Request: map[string]any{}, Response: CDEventResult{}, Status: 200, Errors: []int{400, 409, 413, 422}, Idempotent: true},
}

// ingestCDEvent maps one CDEvent to the record it stands for. The body is
// the CDEvent (CloudEvents binary mode, or a bare CDEvent), or a CloudEvent
// in structured mode (application/cloudevents+json) with the CDEvent as its
// data.
func (s *Server) ingestCDEvent(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, cdevents.MaxDocumentSize))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errTooLarge
		}
		return deploydb.Errorf(deploydb.EBADREQUEST, "reading the request body: %v", err)
	}
	if len(body) == 0 {
		return deploydb.Errorf(deploydb.EBADREQUEST, "request body is empty; expected a CDEvent")
	}
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/cloudevents+json") {
		if body, err = structuredData(body); err != nil {
			return err
		}
	} else if ct != "" && !strings.HasPrefix(ct, "application/json") {
		return deploydb.Errorf(deploydb.EBADREQUEST, "content type %q: send the CDEvent as application/json (CloudEvents binary mode) or a CloudEvent as application/cloudevents+json", ct)
	}
	in, err := cdevents.Parse(body)
	if err != nil {
		return err
	}
	if err := require(r, map[string]deploydb.Scope{
		cdevents.KindArtifactPublished:    deploydb.ScopeArtifactsWrite,
		cdevents.KindServiceDeployed:      deploydb.ScopeDeploymentsWrite,
		cdevents.KindServiceUpgraded:      deploydb.ScopeDeploymentsWrite,
		cdevents.KindTestSuiteRunFinished: deploydb.ScopePromotionsWrite,
		cdevents.KindTestCaseRunFinished:  deploydb.ScopePromotionsWrite,
	}[in.Kind]); err != nil {
		return err
	}
	// An event is identified by its source and id (CloudEvents), and its
	// type, against senders that reuse ids: the same event again, from a
	// sender that retries, gets the first answer back. Each caller's
	// events are its own: no token can claim another's ids in advance.
	sum := sha256.Sum256([]byte(actor(r) + "\x00" + in.Source + "\x00" + in.ID + "\x00" + in.Type))
	key := "cdevent:" + hex.EncodeToString(sum[:])
	if prev, err := s.store.FindIdempotent(r.Context(), key); err == nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set(HeaderReplayed, "true")
		w.WriteHeader(prev.Status)
		_, _ = w.Write(prev.Body)
		return nil
	} else if deploydb.ErrorCode(err) != deploydb.ENOTFOUND {
		return err
	}
	cfg := s.config()
	out := CDEventResult{Type: in.Type}
	ctx := r.Context()
	switch in.Kind {
	case cdevents.KindArtifactPublished:
		out.Recorded, out.Artifact, err = s.cdeventArtifact(ctx, cfg, in, actor(r))
	case cdevents.KindServiceDeployed, cdevents.KindServiceUpgraded:
		out.Recorded, out.Deployment, err = s.cdeventDeployed(ctx, cfg, in, actor(r))
	case cdevents.KindTestSuiteRunFinished, cdevents.KindTestCaseRunFinished:
		out.Recorded, out.PromotionResult, err = s.cdeventTestRun(ctx, cfg, in, callerOf(r))
	default:
		err = deploydb.Errorf(deploydb.EINVALID, "DeployDB does not take in %s", in.Type)
	}
	if err != nil {
		return err
	}
	// 200 whatever was recorded: the body says what it was.
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	if err := s.store.SaveIdempotent(context.WithoutCancel(ctx), deploydb.IdempotentResponse{Key: key, RequestHash: key, Status: http.StatusOK, Body: b}); err != nil {
		s.log(r).Warn("remembering the answer to a CDEvent failed", "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// structuredData returns the data of a CloudEvent in structured mode.
func structuredData(body []byte) ([]byte, error) {
	var ce struct {
		SpecVersion     string          `json:"specversion"`
		DataContentType string          `json:"datacontenttype"`
		Data            json.RawMessage `json:"data"`
		DataBase64      string          `json:"data_base64"`
	}
	if err := json.Unmarshal(body, &ce); err != nil {
		return nil, deploydb.Errorf(deploydb.EBADREQUEST, "request body is not a CloudEvent in JSON: %v", err)
	}
	switch {
	case ce.SpecVersion == "":
		return nil, deploydb.Errorf(deploydb.EINVALID, "a CloudEvent in structured mode has a specversion")
	case ce.DataBase64 != "":
		return nil, deploydb.Errorf(deploydb.EINVALID, "data_base64: send the CDEvent as JSON in data")
	case len(ce.Data) == 0 || string(ce.Data) == "null":
		return nil, deploydb.Errorf(deploydb.EINVALID, "the CloudEvent has no data: its data is the CDEvent")
	}
	return ce.Data, nil
}

// cdeventArtifact publishes the artifact of an artifact.published event. The
// same event again finds the artifact recorded and changes nothing.
func (s *Server) cdeventArtifact(ctx context.Context, cfg *deploydb.Config, in *cdevents.Inbound, actor string) (string, *deploydb.Artifact, error) {
	a := in.Artifact
	if a.SourceURL == "" {
		return "", nil, &deploydb.Error{Code: deploydb.EINVALID,
			Message: "artifact.published: DeployDB needs the artifact's source URL: set customData.sourceUrl, or a download_url qualifier on the package URL in subject.id",
			Fields:  []deploydb.FieldError{{Field: "customData.sourceUrl", Message: "is required (or subject.id's download_url qualifier)"}}}
	}
	if err := a.Validate(); err != nil {
		return "", nil, err
	}
	got, _, err := s.store.PublishArtifact(ctx, cfg, a, actor)
	if deploydb.ErrorCode(err) == deploydb.ECONFLICT {
		// The same event again (at-least-once senders repeat): the
		// artifact is there with the same source, nothing to do.
		list, ferr := s.store.FindArtifacts(ctx, deploydb.ArtifactFilter{Group: a.Group, Name: a.Name, Query: a.Version, Page: deploydb.Page{Size: deploydb.MaxPageSize}})
		if ferr != nil {
			return "", nil, ferr
		}
		for _, x := range list {
			if x.Version == a.Version && x.SourceURL == a.SourceURL {
				return "unchanged", x, nil
			}
		}
		return "", nil, err
	}
	if err != nil {
		return "", nil, err
	}
	return "artifact", got, nil
}

// cdeventDeployed completes the deployment a service.deployed or
// service.upgraded event reports: the one in flight of that service in that
// environment, of that artifact (or the deployment customData names).
func (s *Server) cdeventDeployed(ctx context.Context, cfg *deploydb.Config, in *cdevents.Inbound, actor string) (string, *deploydb.Deployment, error) {
	what := fmt.Sprintf("%s: no deployment of %s %s to service %s in environment %s", in.Kind, in.Artifact.Module(), in.Artifact.Version, in.Service, in.Environment)
	var d *deploydb.Deployment
	if in.Deployment != 0 {
		found, err := s.store.FindDeployment(ctx, in.Deployment)
		if deploydb.ErrorCode(err) == deploydb.ENOTFOUND {
			return "", nil, deploydb.Errorf(deploydb.EINVALID, "%s: customData.deployment %d does not exist", in.Kind, in.Deployment)
		} else if err != nil {
			return "", nil, err
		}
		if found.Service != in.Service || found.Environment != in.Environment || !sameArtifact(found.Artifact, in.Artifact) {
			return "", nil, deploydb.Errorf(deploydb.EINVALID, "%s: customData.deployment %d is of %s %s to %s in %s, not what the event says", in.Kind, found.ID,
				found.Artifact.Module(), found.Artifact.Version, found.Service, found.Environment)
		}
		d = found
	} else {
		if _, ok := cfg.Services[in.Service]; !ok {
			return "", nil, deploydb.Errorf(deploydb.EINVALID, "%s: subject.id %q is not a service DeployDB knows", in.Kind, in.Service)
		}
		list, err := s.store.FindDeployments(ctx, deploydb.DeploymentFilter{Service: in.Service, Environment: in.Environment, Page: deploydb.Page{Size: deploydb.MaxPageSize}})
		if err != nil {
			return "", nil, err
		}
		// Newest first: the one in flight, else the newest of that
		// artifact, which says why it cannot complete (or that it has).
		for _, x := range list {
			if !sameArtifact(x.Artifact, in.Artifact) {
				continue
			}
			if d == nil {
				d = x
			}
			if x.Status == deploydb.DeploymentCreated || x.Status == deploydb.DeploymentStarted {
				d = x
				break
			}
		}
		if d == nil {
			return "", nil, deploydb.Errorf(deploydb.EINVALID, "%s", what)
		}
	}
	switch d.Status {
	case deploydb.DeploymentCreated, deploydb.DeploymentStarted:
	case deploydb.DeploymentCompleted, deploydb.DeploymentSuccess:
		return "unchanged", d, nil
	case deploydb.DeploymentNotStarted:
		return "", nil, &deploydb.Error{Code: deploydb.ECONFLICT, Current: string(d.Status),
			Message: fmt.Sprintf("%s: deployment %d of %s %s to %s in %s is queued (NOT_STARTED), not in flight: it cannot have completed", in.Kind, d.ID, d.Artifact.Module(), d.Artifact.Version, d.Service, d.Environment)}
	default:
		return "", nil, &deploydb.Error{Code: deploydb.ECONFLICT, Current: string(d.Status),
			Message: fmt.Sprintf("%s: deployment %d of %s %s to %s in %s is %s: it cannot complete", in.Kind, d.ID, d.Artifact.Module(), d.Artifact.Version, d.Service, d.Environment, d.Status)}
	}
	got, err := s.store.ReportDeployment(ctx, cfg, deploydb.DeploymentReport{Deployment: d.ID, Status: deploydb.DeploymentCompleted, Actor: actor})
	if deploydb.ErrorCode(err) == deploydb.ECONFLICT {
		// The same event at the same time, from another sender or a
		// retry: the other one completed it.
		if now, ferr := s.store.FindDeployment(ctx, d.ID); ferr == nil && (now.Status == deploydb.DeploymentCompleted || now.Status == deploydb.DeploymentSuccess) {
			return "unchanged", now, nil
		}
	}
	if err != nil {
		return "", nil, err
	}
	return "deployment", got, nil
}

// cdeventTestRun reports the promotion result a finished test run stands
// for: the test suite (or case) names the promotion, the environment and,
// when several services there await it, customData's service or deployment
// pick the deployment.
func (s *Server) cdeventTestRun(ctx context.Context, cfg *deploydb.Config, in *cdevents.Inbound, caller *deploydb.Caller) (string, *deploydb.PromotionResult, error) {
	if _, ok := cfg.Promotions[in.Promotion]; !ok {
		return "", nil, deploydb.Errorf(deploydb.EINVALID, "%s: test %q is not a promotion DeployDB knows; name the test suite (or case) after the promotion", in.Kind, in.Promotion)
	}
	if _, ok := cfg.Environments[in.Environment]; !ok {
		return "", nil, deploydb.Errorf(deploydb.EINVALID, "%s: environment %q is not one DeployDB knows", in.Kind, in.Environment)
	}
	awaits := func(d *deploydb.Deployment) bool {
		if d.Environment != in.Environment || d.Status != deploydb.DeploymentCompleted {
			return false
		}
		return slices.ContainsFunc(d.Promotions, func(r deploydb.PromotionResult) bool {
			return r.Promotion == in.Promotion && r.Status == deploydb.PromotionStarted
		})
	}
	var d *deploydb.Deployment
	if in.Deployment != 0 {
		found, err := s.store.FindDeployment(ctx, in.Deployment)
		if deploydb.ErrorCode(err) == deploydb.ENOTFOUND {
			return "", nil, deploydb.Errorf(deploydb.EINVALID, "%s: customData.deployment %d does not exist", in.Kind, in.Deployment)
		} else if err != nil {
			return "", nil, err
		}
		if found.Environment != in.Environment {
			return "", nil, deploydb.Errorf(deploydb.EINVALID, "%s: customData.deployment %d is in %s, not %s", in.Kind, found.ID, found.Environment, in.Environment)
		}
		if r := resultOf(found, in); r != nil && !awaits(found) {
			return "unchanged", r, nil
		}
		d = found
	} else {
		list, err := s.store.FindDeployments(ctx, deploydb.DeploymentFilter{Service: in.Service, Environment: in.Environment, Status: deploydb.DeploymentCompleted, Page: deploydb.Page{Size: deploydb.MaxPageSize}})
		if err != nil {
			return "", nil, err
		}
		var waiting []*deploydb.Deployment
		for _, x := range list {
			if awaits(x) {
				waiting = append(waiting, x)
			}
		}
		switch len(waiting) {
		case 0:
			scope := "no deployment in " + in.Environment
			if in.Service != "" {
				scope = "no deployment of " + in.Service + " in " + in.Environment
			}
			return "", nil, deploydb.Errorf(deploydb.EINVALID, "%s: %s awaits a result of promotion %s", in.Kind, scope, in.Promotion)
		case 1:
			d = waiting[0]
		default:
			var which []string
			for _, x := range waiting {
				which = append(which, fmt.Sprintf("%s (deployment %d)", x.Service, x.ID))
			}
			return "", nil, deploydb.Errorf(deploydb.EINVALID, "%s: several deployments in %s await promotion %s: %s; say which with customData.service or customData.deployment",
				in.Kind, in.Environment, in.Promotion, strings.Join(which, ", "))
		}
	}
	res, err := s.store.ReportPromotion(ctx, cfg, deploydb.PromotionReport{Deployment: d.ID, Promotion: in.Promotion, Status: in.Status, InfoURL: in.InfoURL, Actor: caller.Name, Caller: caller})
	if deploydb.ErrorCode(err) == deploydb.ECONFLICT {
		// The same event at the same time: the other one reported it.
		if now, ferr := s.store.FindDeployment(ctx, d.ID); ferr == nil {
			if r := resultOf(now, in); r != nil {
				return "unchanged", r, nil
			}
		}
	}
	if err != nil {
		return "", nil, err
	}
	return "promotionResult", res, nil
}

// resultOf returns d's result of the promotion in names, if it has the
// status in reports.
func resultOf(d *deploydb.Deployment, in *cdevents.Inbound) *deploydb.PromotionResult {
	for i := range d.Promotions {
		if r := &d.Promotions[i]; r.Promotion == in.Promotion && r.Status == in.Status {
			return r
		}
	}
	return nil
}

func sameArtifact(a, b deploydb.Artifact) bool {
	return a.Group == b.Group && a.Name == b.Name && a.Version == b.Version
}
