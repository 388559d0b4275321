package engine

import (
	"time"

	"github.com/deploydb/deploydb"
)

// NewFlows lays out the flows a newly published artifact starts: one per
// service of cfg that consumes it, each with one NOT_STARTED deployment per
// environment of the service's pipeline, in pipeline order, carrying its
// promotion results. Everything the flow needs from the config (stages,
// promotions and their types, failure strategies) is copied into it, so
// that it finishes under the config it started with. Ids are left for the
// store to assign. Returns ENOTFOUND when no service consumes the artifact.
func NewFlows(cfg *deploydb.Config, a deploydb.Artifact, now deploydb.Time) ([]*deploydb.Flow, error) {
	services := cfg.ServicesConsuming(a.Group, a.Name)
	if len(services) == 0 {
		return nil, deploydb.Errorf(deploydb.ENOTFOUND, "no service consumes %s: add it to the artifacts of a service in the config directory", a.Module())
	}
	var flows []*deploydb.Flow
	for _, s := range services {
		pl := cfg.Pipelines[s.Pipeline()]
		f := newFlow(cfg, s, pl.Ident, deploydb.ReasonPipeline, a, now)
		for pos, stage := range pl.Environments {
			f.Deployments = append(f.Deployments, newDeployment(cfg, s, stage, pos, deploydb.ReasonPipeline, a, now))
		}
		flows = append(flows, f)
	}
	return flows, nil
}

// NewSingleFlow lays out the one-deployment flow of a rollback or a hotfix:
// artifact a deployed to env for service, with the promotions of that
// stage of the service's pipeline. A rollback that fails only notifies, so
// that it cannot roll back again. Returns EINVALID when env is not in the
// service's pipeline.
func NewSingleFlow(cfg *deploydb.Config, service, env string, reason deploydb.Reason, a deploydb.Artifact, now deploydb.Time) (*deploydb.Flow, error) {
	s, ok := cfg.Services[service]
	if !ok {
		return nil, deploydb.Errorf(deploydb.ENOTFOUND, "service %q is not configured", service)
	}
	pl := cfg.Pipelines[s.Pipeline()]
	for pos, stage := range pl.Environments {
		if stage.Environment != env {
			continue
		}
		f := newFlow(cfg, s, pl.Ident, reason, a, now)
		d := newDeployment(cfg, s, stage, pos, reason, a, now)
		if reason == deploydb.ReasonRollback {
			d.FailureStrategy = deploydb.FailureNotify
		}
		f.Deployments = []deploydb.Deployment{d}
		return f, nil
	}
	return nil, deploydb.Errorf(deploydb.EINVALID, "environment %q is not in pipeline %q of service %s", env, pl.Ident, service)
}

func newFlow(cfg *deploydb.Config, s *deploydb.Service, pipeline string, reason deploydb.Reason, a deploydb.Artifact, now deploydb.Time) *deploydb.Flow {
	return &deploydb.Flow{
		Artifact:       a,
		Service:        s.Ident,
		Pipeline:       pipeline,
		Reason:         reason,
		Status:         deploydb.FlowCreated,
		ConfigChecksum: cfg.Checksum,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
}

func newDeployment(cfg *deploydb.Config, s *deploydb.Service, stage deploydb.PipelineStage, pos int, reason deploydb.Reason, a deploydb.Artifact, now deploydb.Time) deploydb.Deployment {
	strategy := s.FailureStrategy
	if stage.FailureStrategy != "" {
		strategy = stage.FailureStrategy
	}
	if strategy == "" {
		strategy = deploydb.FailureNotify
	}
	d := deploydb.Deployment{
		Artifact:        a,
		Service:         s.Ident,
		Environment:     stage.Environment,
		Status:          deploydb.DeploymentNotStarted,
		Reason:          reason,
		Position:        pos,
		FailureStrategy: strategy,
		CreatedAt:       now,
		UpdatedAt:       now,
		Promotions:      []deploydb.PromotionResult{},
	}
	for _, name := range deploydb.StagePromotions(s, stage) {
		r := deploydb.PromotionResult{Promotion: name, Type: deploydb.PromotionTypeBasic, Status: deploydb.PromotionNotStarted, CreatedAt: now, UpdatedAt: now}
		if pr, ok := cfg.Promotions[name]; ok {
			r.Type = pr.Type
			if pr.Type == deploydb.PromotionTypeSoak {
				r.SoakMs = soakDuration(pr).Milliseconds()
			}
		}
		d.Promotions = append(d.Promotions, r)
	}
	return d
}

// soakDuration returns a soak promotion's attributes.duration (validated
// when the config was loaded).
func soakDuration(p *deploydb.Promotion) time.Duration {
	s, _ := p.Attributes["duration"].(string)
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0
	}
	return d
}

// NewRollbackFlow lays out the one-deployment flow that rolls the service of
// deployment d back to artifact a in d's environment. It is built from d,
// not from the config in force, so that a flow finishes under the config it
// started with: same environment, position and promotions. A rollback that
// fails only notifies, so that it cannot roll back again.
func NewRollbackFlow(f *deploydb.Flow, d *deploydb.Deployment, a deploydb.Artifact, now deploydb.Time) *deploydb.Flow {
	rf := &deploydb.Flow{
		Artifact:       a,
		Service:        f.Service,
		Pipeline:       f.Pipeline,
		Reason:         deploydb.ReasonRollback,
		Status:         deploydb.FlowCreated,
		ConfigChecksum: f.ConfigChecksum,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	rd := NewRetry(d, now)
	rd.Artifact, rd.Reason, rd.FailureStrategy = a, deploydb.ReasonRollback, deploydb.FailureNotify
	rf.Deployments = []deploydb.Deployment{rd}
	return rf
}
