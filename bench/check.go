package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/engine"
	"github.com/deploydb/deploydb/sqlite"
)

// Check opens the SQLite database at path with the real store (package
// sqlite) and checks that what it holds is a history DeployDB could have
// recorded under cfg:
//
//   - every service's flows keep the invariants of the state machine
//     (engine.CheckServiceInvariants: deployments, promotion results,
//     nothing left waiting for a free environment);
//   - the event log tells the same story: each deployment's last event
//     carries its status, and the status matrix the store keeps is the one
//     the log's deployment events build;
//   - every webhook delivery is delivered and has its one attempt, and
//     every row an event or a delivery names exists.
//
// It reads the whole history: it takes a while on a large one.
func Check(ctx context.Context, path string, cfg *deploydb.Config) error {
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer s.Close()
	var errs []error
	bad := func(format string, args ...any) {
		if len(errs) < 50 {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}

	// Flows, service by service.
	status := map[int64]deploydb.DeploymentStatus{}
	for _, svc := range slices.Sorted(maps.Keys(cfg.Services)) {
		var flows []*deploydb.Flow
		for page := 0; ; page++ {
			fs, err := s.FindFlows(ctx, deploydb.FlowFilter{Service: svc, Ascending: true, Page: deploydb.Page{Number: page, Size: deploydb.MaxPageSize}})
			if err != nil {
				return err
			}
			flows = append(flows, fs...)
			if len(fs) < deploydb.MaxPageSize {
				break
			}
		}
		if len(flows) == 0 {
			continue
		}
		if err := engine.CheckServiceInvariants(flows, map[string]engine.EnvState{}); err != nil {
			bad("service %s: %w", svc, err)
		}
		for _, f := range flows {
			for _, d := range f.Deployments {
				status[d.ID] = d.Status
			}
		}
	}

	// The event log, oldest first.
	last := map[int64]string{}
	cells := map[[2]string]*cell{}
	for after := int64(0); ; {
		evs, err := s.FindEvents(ctx, deploydb.EventFilter{After: after, Limit: deploydb.MaxPageSize})
		if err != nil {
			return err
		}
		for _, ev := range evs {
			after = ev.ID
			if ev.Deployment == 0 {
				continue
			}
			if _, ok := status[ev.Deployment]; !ok {
				bad("event %d (%s) names deployment %d, which no flow has", ev.ID, ev.Type, ev.Deployment)
				continue
			}
			last[ev.Deployment] = ev.Status
			key := [2]string{ev.Service, ev.Environment}
			c := cells[key]
			if c == nil && ev.Type == deploydb.EventDeploymentCreated {
				c = &cell{}
				cells[key] = c
			}
			if c == nil {
				if ev.Type != deploydb.EventDeploymentSuperseded && ev.Type != deploydb.EventDeploymentCancelled {
					bad("event %d (%s) of deployment %d in %s/%s, never created there", ev.ID, ev.Type, ev.Deployment, ev.Service, ev.Environment)
				}
				continue
			}
			d, at := ev.Deployment, ev.CreatedAt.UnixMilli()
			switch ev.Type {
			case deploydb.EventDeploymentCreated:
				c.inFlight = d
			case deploydb.EventDeploymentCompleted:
				c.current, c.currentSince, c.lastAttempt = d, at, 0
			case deploydb.EventDeploymentVerified:
				if c.current != d {
					c.currentSince = at
				}
				c.current, c.lastGood, c.lastAttempt = d, d, 0
				if c.inFlight == d {
					c.inFlight = 0
				}
			case deploydb.EventDeploymentFailed:
				if c.current != d {
					c.lastAttempt = d
				}
				if c.inFlight == d {
					c.inFlight = 0
				}
			case deploydb.EventDeploymentCancelled:
				if c.inFlight == d {
					c.inFlight = 0
				}
			}
		}
		if len(evs) < deploydb.MaxPageSize {
			break
		}
	}
	for id, st := range status {
		want, ok := last[id]
		if !ok {
			want = string(deploydb.DeploymentNotStarted)
		}
		if string(st) != want {
			bad("deployment %d is %s, but its last event says %s", id, st, want)
		}
	}

	// The status matrix as kept, against the one the log builds.
	kept, err := s.FindStatus(ctx)
	if err != nil {
		return err
	}
	id := func(d *deploydb.Deployment) int64 {
		if d == nil {
			return 0
		}
		return d.ID
	}
	for _, k := range kept {
		key := [2]string{k.Service, k.Environment}
		c := cells[key]
		if c == nil {
			bad("status matrix has %s/%s, where the log created nothing", k.Service, k.Environment)
			continue
		}
		delete(cells, key)
		got := Cell{k.Service, k.Environment, id(k.Current), k.CurrentSince.UnixMilli(), id(k.InFlight), id(k.LastAttempt), id(k.LastGood)}
		if k.CurrentSince.IsZero() {
			got.CurrentSince = 0
		}
		want := Cell{k.Service, k.Environment, c.current, c.currentSince, c.inFlight, c.lastAttempt, c.lastGood}
		if got != want {
			bad("status matrix %s/%s is %+v, the log says %+v", k.Service, k.Environment, got, want)
		}
	}
	for key := range cells {
		bad("status matrix lacks %s/%s, where the log created a deployment", key[0], key[1])
	}

	// Deliveries and what rows name.
	db := s.DB()
	for _, q := range []struct{ what, query string }{
		{"deliveries not delivered at their one attempt", `SELECT count(*) FROM webhook_deliveries d
			WHERE d.status <> 'delivered' OR d.attempts <> 1 OR (SELECT count(*) FROM webhook_attempts a WHERE a.delivery_id = d.id) <> 1`},
		{"deliveries of no event", `SELECT count(*) FROM webhook_deliveries d WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = d.event_id)`},
		{"deliveries of no deployment", `SELECT count(*) FROM webhook_deliveries d WHERE d.deployment_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM deployments x WHERE x.id = d.deployment_id)`},
		{"events of no flow", `SELECT count(*) FROM events e WHERE e.flow_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM flows f WHERE f.id = e.flow_id)`},
		{"events of no artifact", `SELECT count(*) FROM events e WHERE e.artifact_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.id = e.artifact_id)`},
		{"rows that break a foreign key", `SELECT count(*) FROM pragma_foreign_key_check`},
	} {
		var n int64
		if err := db.QueryRowContext(ctx, q.query).Scan(&n); err != nil {
			return fmt.Errorf("bench: check %s: %w", q.what, err)
		}
		if n != 0 {
			bad("%d %s", n, q.what)
		}
	}
	return errors.Join(errs...)
}
