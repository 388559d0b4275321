package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/deploydb/deploydb"
)

// ActionInput is the body of an operator action: why it is taken.
type ActionInput struct {
	Reason string `json:"reason"`
}

// HotfixInput is the body of POST /api/deployments: deploy a chosen artifact
// to an environment out of pipeline order.
type HotfixInput struct {
	Artifact    int64  `json:"artifact"`
	Service     string `json:"service"`
	Environment string `json:"environment"`
	Reason      string `json:"reason"`
}

// EnvironmentView is an environment as configured, with its lock and
// whether a freeze window holds it now.
type EnvironmentView struct {
	Ident       string            `json:"ident"`
	Description string            `json:"description"`
	Production  bool              `json:"production"`
	Webhook     deploydb.Webhook  `json:"webhook"`
	Freezes     []deploydb.Freeze `json:"freezes,omitempty"`
	Lock        *deploydb.Lock    `json:"lock"`
	// Frozen says why a freeze window holds activation now, if one does.
	Frozen string `json:"frozen,omitempty"`
}

// reason reads an operator action's reason; it is required, for the audit
// trail. An empty body is an action without a reason.
func readReason(w http.ResponseWriter, r *http.Request) (string, error) {
	var in ActionInput
	if r.ContentLength != 0 {
		if err := decode(w, r, &in); err != nil {
			return "", err
		}
	}
	return requireReason(in.Reason)
}

func requireReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return "", &deploydb.Error{Code: deploydb.EINVALID, Message: "reason is required: operator actions are audited with who and why",
			Fields: []deploydb.FieldError{{Field: "reason", Message: "is required"}}}
	}
	if len(reason) > deploydb.MaxArtifactFieldLen {
		return "", &deploydb.Error{Code: deploydb.EINVALID, Message: "reason is too long",
			Fields: []deploydb.FieldError{{Field: "reason", Message: fmt.Sprintf("must be at most %d characters", deploydb.MaxArtifactFieldLen)}}}
	}
	return reason, nil
}

func (s *Server) environmentView(r *http.Request, e *deploydb.Environment, locks map[string]*deploydb.Lock) EnvironmentView {
	v := EnvironmentView{Ident: e.Ident, Description: e.Description, Production: e.Production, Webhook: e.Webhook, Freezes: e.Freezes, Lock: locks[e.Ident]}
	if frozen, why, until := e.FrozenAt(s.now()); frozen {
		v.Frozen = why
		if !until.IsZero() {
			v.Frozen += " (until " + deploydb.NewTime(until).String() + ")"
		}
	}
	return v
}

func (s *Server) listEnvironments(w http.ResponseWriter, r *http.Request) error {
	locks, err := s.store.FindLocks(r.Context())
	if err != nil {
		return err
	}
	out := []EnvironmentView{}
	for _, e := range sorted(s.config().Environments) {
		out = append(out, s.environmentView(r, e, locks))
	}
	encode(w, http.StatusOK, out)
	return nil
}

func (s *Server) getEnvironment(w http.ResponseWriter, r *http.Request) error {
	e, err := one(s.config().Environments, "environment", r.PathValue("name"))
	if err != nil {
		return err
	}
	locks, err := s.store.FindLocks(r.Context())
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, s.environmentView(r, e, locks))
	return nil
}

func (s *Server) lockEnvironment(w http.ResponseWriter, r *http.Request) error {
	reason, err := readReason(w, r)
	if err != nil {
		return err
	}
	l, err := s.store.LockEnvironment(r.Context(), s.config(), r.PathValue("name"), deploydb.Action{Actor: actor(r), Reason: reason})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/environments/"+l.Environment+"/lock")
	encode(w, http.StatusCreated, l)
	return nil
}

func (s *Server) unlockEnvironment(w http.ResponseWriter, r *http.Request) error {
	var in ActionInput
	if r.ContentLength != 0 {
		if err := decode(w, r, &in); err != nil {
			return err
		}
	}
	if err := s.store.UnlockEnvironment(r.Context(), s.config(), r.PathValue("name"), deploydb.Action{Actor: actor(r), Reason: strings.TrimSpace(in.Reason)}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) cancelFlow(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	reason, err := readReason(w, r)
	if err != nil {
		return err
	}
	f, err := s.store.CancelFlow(r.Context(), s.config(), id, deploydb.Action{Actor: actor(r), Reason: reason})
	if err != nil {
		return err
	}
	encode(w, http.StatusOK, f)
	return nil
}

// created answers 201 with the new deployment an operator action made.
func created(w http.ResponseWriter, d *deploydb.Deployment) {
	w.Header().Set("Location", fmt.Sprintf("/api/deployments/%d", d.ID))
	encode(w, http.StatusCreated, d)
}

// deploymentAction runs an operator action on deployment {id} that makes a
// new deployment, and answers 201 with it.
func (s *Server) deploymentAction(w http.ResponseWriter, r *http.Request, act func(ctx context.Context, cfg *deploydb.Config, id int64, a deploydb.Action) (*deploydb.Deployment, error)) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	reason, err := readReason(w, r)
	if err != nil {
		return err
	}
	d, err := act(r.Context(), s.config(), id, deploydb.Action{Actor: actor(r), Reason: reason})
	if err != nil {
		return err
	}
	created(w, d)
	return nil
}

func (s *Server) retryDeployment(w http.ResponseWriter, r *http.Request) error {
	return s.deploymentAction(w, r, s.store.RetryDeployment)
}

func (s *Server) rollbackDeployment(w http.ResponseWriter, r *http.Request) error {
	return s.deploymentAction(w, r, s.store.Rollback)
}

func (s *Server) hotfix(w http.ResponseWriter, r *http.Request) error {
	var in HotfixInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	var fields []deploydb.FieldError
	if in.Artifact <= 0 {
		fields = append(fields, deploydb.FieldError{Field: "artifact", Message: "is required: the id of the artifact to deploy"})
	}
	if in.Service == "" {
		fields = append(fields, deploydb.FieldError{Field: "service", Message: "is required"})
	}
	if in.Environment == "" {
		fields = append(fields, deploydb.FieldError{Field: "environment", Message: "is required"})
	}
	if len(fields) > 0 {
		return &deploydb.Error{Code: deploydb.EINVALID, Message: "invalid hotfix: " + fields[0].Field + " " + fields[0].Message, Fields: fields}
	}
	reason, err := requireReason(in.Reason)
	if err != nil {
		return err
	}
	if _, ok := s.config().Environments[in.Environment]; !ok {
		return deploydb.Errorf(deploydb.ENOTFOUND, "environment %q is not configured", in.Environment)
	}
	d, err := s.store.Hotfix(r.Context(), s.config(), deploydb.HotfixRequest{Artifact: in.Artifact, Service: in.Service, Environment: in.Environment,
		Action: deploydb.Action{Actor: actor(r), Reason: reason}})
	if err != nil {
		return err
	}
	created(w, d)
	return nil
}

// The matrix's types live in the root package, shared with the client.
type (
	// Status is deploydb.Matrix.
	Status = deploydb.Matrix
	// StatusEnvironment is deploydb.MatrixEnvironment.
	StatusEnvironment = deploydb.MatrixEnvironment
	// StatusService is deploydb.MatrixService.
	StatusService = deploydb.MatrixService
	// StatusCell is deploydb.MatrixCell.
	StatusCell = deploydb.MatrixCell
	// CellDeployment is deploydb.MatrixDeployment.
	CellDeployment = deploydb.MatrixDeployment
)

func cellDeployment(d *deploydb.Deployment) *CellDeployment {
	if d == nil {
		return nil
	}
	return &CellDeployment{ID: d.ID, Flow: d.Flow, Artifact: d.Artifact.InMatrix(), Status: d.Status, Reason: d.Reason, UpdatedAt: d.UpdatedAt}
}

// environmentOrder returns every environment, those of pipelines first in
// pipeline order.
func environmentOrder(cfg *deploydb.Config) []string {
	// Every pipeline's order holds: an environment comes after those
	// before it in any pipeline (dev, integ, prod and dev, integ,
	// staging, prod give dev, integ, staging, prod). Among those free to
	// come next, the one seen first, reading the longest pipelines first
	// (then by name); should two pipelines disagree (a cycle), the one
	// seen first of those left.
	pipelines := sorted(cfg.Pipelines)
	sort.SliceStable(pipelines, func(i, j int) bool { return len(pipelines[i].Environments) > len(pipelines[j].Environments) })
	var names []string
	seen := map[string]bool{}
	after := map[string][]string{}
	before := map[string]int{} // how many environments must come first
	edge := map[[2]string]bool{}
	for _, p := range pipelines {
		for i, st := range p.Environments {
			if !seen[st.Environment] {
				seen[st.Environment] = true
				names = append(names, st.Environment)
			}
			if i == 0 {
				continue
			}
			a, b := p.Environments[i-1].Environment, st.Environment
			if a != b && !edge[[2]string{a, b}] {
				edge[[2]string{a, b}] = true
				after[a] = append(after[a], b)
				before[b]++
			}
		}
	}
	out := make([]string, 0, len(cfg.Environments))
	placed := map[string]bool{}
	for len(out) < len(names) {
		next := ""
		for _, n := range names {
			if !placed[n] && before[n] == 0 {
				next = n
				break
			}
		}
		if next == "" { // pipelines that disagree
			for _, n := range names {
				if !placed[n] {
					next = n
					break
				}
			}
		}
		placed[next] = true
		out = append(out, next)
		for _, b := range after[next] {
			before[b]--
		}
	}
	var rest []string
	for name := range cfg.Environments {
		if !seen[name] {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}
