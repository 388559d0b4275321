package webhook

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cdevents"
)

// CDEventsSource is the context.source of the CDEvents DeployDB sends.
const CDEventsSource = "/deploydb"

// CDEventID returns the context.id of the CDEvent of event id: one per
// event, whatever hook it goes to, so that a consumer can tell a hook
// repeated from an event repeated.
func CDEventID(event int64) string { return "deploydb-event-" + strconv.FormatInt(event, 10) }

// cdevent returns the CDEvent of change c under cfg, and the headers of
// CloudEvents binary mode that carry its context.
func cdevent(cfg *deploydb.Config, c Change) ([]byte, []deploydb.HookHeader, error) {
	ev := c.Event
	var doc any
	var typ string
	switch ev.Type {
	case deploydb.EventDeploymentCompleted:
		d := c.Deployment
		if d == nil {
			return nil, nil, fmt.Errorf("%s without its deployment", ev.Type)
		}
		typ = cdevents.ServiceDeployed
		switch {
		case d.Reason == deploydb.ReasonRollback:
			typ = cdevents.ServiceRolledback
		case c.Upgrade:
			typ = cdevents.ServiceUpgraded
		}
		doc = cdevents.ServiceEvent{Type: typ, ID: CDEventID(ev.ID), Source: CDEventsSource, Time: ev.CreatedAt.Time,
			Service: d.Service, Environment: d.Environment, Artifact: d.Artifact, Deployment: d.ID}
	case deploydb.EventEnvironmentCreated, deploydb.EventEnvironmentModified, deploydb.EventEnvironmentDeleted:
		typ = map[deploydb.EventType]string{
			deploydb.EventEnvironmentCreated:  cdevents.EnvironmentCreated,
			deploydb.EventEnvironmentModified: cdevents.EnvironmentModified,
			deploydb.EventEnvironmentDeleted:  cdevents.EnvironmentDeleted,
		}[ev.Type]
		e := cdevents.EnvironmentEvent{Type: typ, ID: CDEventID(ev.ID), Source: CDEventsSource, Time: ev.CreatedAt.Time, Environment: ev.Environment}
		if env, ok := cfg.Environments[ev.Environment]; ok && ev.Type != deploydb.EventEnvironmentDeleted {
			e.Description = env.Description
		}
		doc = e
	default:
		return nil, nil, fmt.Errorf("no CDEvent matches %s", ev.Type)
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("cdevent: %w", err)
	}
	return body, []deploydb.HookHeader{
		{Name: "Ce-Specversion", Value: "1.0"},
		{Name: "Ce-Id", Value: CDEventID(ev.ID)},
		{Name: "Ce-Source", Value: CDEventsSource},
		{Name: "Ce-Type", Value: typ},
		{Name: "Ce-Time", Value: ev.CreatedAt.Time.UTC().Format(deploydb.TimeFormat)},
	}, nil
}
