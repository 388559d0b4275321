package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/engine"
)

// testSnapshot reads flows and deployments while another goroutine moves
// flows along, each through the whole pipeline: every read must show one
// committed state, never a change half applied (a COMPLETED deployment
// whose results are not yet STARTED, a verified deployment whose next one is
// not yet CREATED, a newer flow activated before the older one freed the
// environment, ...).
func testSnapshot(t *testing.T, open Opener) {
	f := newFixture(t, open)
	const cycles = 20
	var done atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				next := f.s.EventsCommitted()
				flows, err := f.s.FindFlows(f.ctx, deploydb.FlowFilter{Service: "billing", Page: deploydb.Page{Size: 5}})
				if err != nil {
					report(err)
					return
				}
				// The newest flows, read at once, share environments as
				// the engine has them share: at most one deployment active
				// in each, nothing waiting for a free one.
				if err := engine.CheckServiceInvariants(flows, nil); err != nil {
					report(fmt.Errorf("FindFlows: %w", err))
				}
				// The newest flow, read again, and its deployments one by
				// one.
				if len(flows) > 0 {
					fl := flows[0]
					one, err := f.s.FindFlow(f.ctx, fl.ID)
					if err != nil {
						report(err)
						return
					}
					if err := engine.CheckInvariants(one); err != nil {
						report(fmt.Errorf("FindFlow: flow %d: %w", fl.ID, err))
					}
					for _, d := range fl.Deployments {
						got, err := f.s.FindDeployment(f.ctx, d.ID)
						if err != nil {
							report(err)
							return
						}
						if err := deploymentConsistent(got); err != nil {
							report(fmt.Errorf("FindDeployment: %w", err))
						}
					}
				}
				// Read again once the writer has committed its next
				// change (while it writes the one after), rather than
				// spin and starve it.
				select {
				case <-next:
				case <-stop:
				}
			}
		}()
	}
	for i := 0; i < cycles; i++ {
		_, fl := f.publishOne("billing", fmt.Sprintf("1.0.%d", i))
		for _, d := range fl.Deployments {
			f.report(d.ID, deploydb.DeploymentCompleted)
			for _, r := range f.deployment(d.ID).Promotions {
				f.promote(d.ID, r.Promotion, deploydb.PromotionSuccess)
			}
		}
	}
	done.Store(true)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// deploymentConsistent checks that a deployment's promotion results agree
// with its status.
func deploymentConsistent(d *deploydb.Deployment) error {
	for _, r := range d.Promotions {
		switch d.Status {
		case deploydb.DeploymentNotStarted, deploydb.DeploymentCreated, deploydb.DeploymentStarted:
			if r.Status != deploydb.PromotionNotStarted {
				return fmt.Errorf("deployment %d is %s but result %s is %s", d.ID, d.Status, r.Promotion, r.Status)
			}
		case deploydb.DeploymentCompleted:
			if r.Status == deploydb.PromotionNotStarted {
				return fmt.Errorf("deployment %d is COMPLETED but result %s is NOT_STARTED", d.ID, r.Promotion)
			}
		case deploydb.DeploymentSuccess:
			if r.Status != deploydb.PromotionSuccess {
				return fmt.Errorf("deployment %d is SUCCESS but result %s is %s", d.ID, r.Promotion, r.Status)
			}
		}
	}
	return nil
}
