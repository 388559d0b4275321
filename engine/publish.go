package engine

import (
	"github.com/deploydb/deploydb"
)

// NewFlows lays out the flows a newly published artifact starts: one per
// service of cfg that consumes it, each with one NOT_STARTED deployment per
// environment of the service's pipeline, in pipeline order, carrying its
// promotion results. Ids are left for the store to assign. Returns ENOTFOUND
// when no service consumes the artifact.
func NewFlows(cfg *deploydb.Config, a deploydb.Artifact, now deploydb.Time) ([]*deploydb.Flow, error) {
	services := cfg.ServicesConsuming(a.Group, a.Name)
	if len(services) == 0 {
		return nil, deploydb.Errorf(deploydb.ENOTFOUND, "no service consumes %s: add it to the artifacts of a service in the config directory", a.Module())
	}
	var flows []*deploydb.Flow
	for _, s := range services {
		pl := cfg.Pipelines[s.Pipeline()]
		f := &deploydb.Flow{
			Artifact:       a,
			Service:        s.Ident,
			Pipeline:       pl.Ident,
			Status:         deploydb.FlowCreated,
			ConfigChecksum: cfg.Checksum,
			CreatedAt:      now,
			UpdatedAt:      now,
		}
		for pos, stage := range pl.Environments {
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
				Reason:          deploydb.ReasonPipeline,
				Position:        pos,
				FailureStrategy: strategy,
				CreatedAt:       now,
				UpdatedAt:       now,
				Promotions:      []deploydb.PromotionResult{},
			}
			for _, p := range deploydb.StagePromotions(s, stage) {
				d.Promotions = append(d.Promotions, deploydb.PromotionResult{
					Promotion: p,
					Status:    deploydb.PromotionNotStarted,
					CreatedAt: now,
					UpdatedAt: now,
				})
			}
			f.Deployments = append(f.Deployments, d)
		}
		flows = append(flows, f)
	}
	return flows, nil
}
