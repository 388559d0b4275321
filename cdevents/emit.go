package cdevents

import (
	"encoding/json"
	"time"

	"github.com/deploydb/deploydb"
)

// ServiceEvent is a service.deployed, service.upgraded or
// service.rolledback event DeployDB emits when a deployment completes.
// Marshalled with encoding/json it is the CDEvent document, validated
// against its schema.
type ServiceEvent struct {
	// Type is ServiceDeployed, ServiceUpgraded or ServiceRolledback.
	Type string
	// ID identifies the event; it must be unique for Source.
	ID string
	// Source is the URI reference of this DeployDB (context.source, and
	// the source of the service and the environment).
	Source string
	// Time is when the deployment completed.
	Time        time.Time
	Service     string
	Environment string
	// Artifact is the deployed artifact: its purl is the artifactId, and
	// its SourceURL (when not empty) goes into customData.sourceUrl.
	Artifact deploydb.Artifact
	// Deployment is the DeployDB deployment id, written as
	// customData.deployment when not zero.
	Deployment int64
}

// EnvironmentEvent is an environment.created, environment.modified or
// environment.deleted event DeployDB emits when the config adds, changes or
// removes an environment. Marshalled with encoding/json it is the CDEvent
// document, validated against its schema.
type EnvironmentEvent struct {
	// Type is EnvironmentCreated, EnvironmentModified or EnvironmentDeleted.
	Type string
	// ID identifies the event; it must be unique for Source.
	ID string
	// Source is the URI reference of this DeployDB.
	Source string
	// Time is when the change took effect.
	Time time.Time
	// Environment is the environment's ident: subject.id and content.name.
	Environment string
	// Description, when not empty, goes into customData.description (the
	// schemas have no place for it in the content).
	Description string
}

type envelope struct {
	Context               eventContext `json:"context"`
	Subject               subject      `json:"subject"`
	CustomData            any          `json:"customData,omitempty"`
	CustomDataContentType string       `json:"customDataContentType,omitempty"`
}

type eventContext struct {
	SpecVersion string `json:"specversion"`
	ID          string `json:"id"`
	Source      string `json:"source"`
	Type        string `json:"type"`
	Timestamp   string `json:"timestamp"`
}

type subject struct {
	ID      string `json:"id"`
	Source  string `json:"source,omitempty"`
	Content any    `json:"content"`
}

type reference struct {
	ID     string `json:"id"`
	Source string `json:"source,omitempty"`
}

type serviceContent struct {
	Environment reference `json:"environment"`
	ArtifactID  string    `json:"artifactId"`
}

type serviceData struct {
	Deployment int64  `json:"deployment,omitempty"`
	SourceURL  string `json:"sourceUrl,omitempty"`
}

type environmentContent struct {
	Name string `json:"name"`
}

type environmentData struct {
	Description string `json:"description"`
}

func newContext(typ, id, source string, t time.Time) (eventContext, error) {
	if t.IsZero() {
		return eventContext{}, deploydb.Errorf(deploydb.EINVALID, "cdevents: %s event %s has no time", typ, short(id))
	}
	return eventContext{SpecVersion: SpecVersion, ID: id, Source: source, Type: typ,
		Timestamp: t.UTC().Format(deploydb.TimeFormat)}, nil
}

// MarshalJSON renders the CDEvent and validates it. Returns EINVALID when
// the type is not a service event type, a field is missing or the result
// does not match the schema.
func (e ServiceEvent) MarshalJSON() ([]byte, error) {
	switch e.Type {
	case ServiceDeployed, ServiceUpgraded, ServiceRolledback:
	default:
		return nil, deploydb.Errorf(deploydb.EINVALID, "cdevents: %s is not a service event type (%s, %s, %s)",
			short(e.Type), ServiceDeployed, ServiceUpgraded, ServiceRolledback)
	}
	a := e.Artifact
	if a.Group == "" || a.Name == "" || a.Version == "" {
		return nil, deploydb.Errorf(deploydb.EINVALID, "cdevents: %s event %s: the artifact needs a group, a name and a version", e.Type, short(e.ID))
	}
	ctx, err := newContext(e.Type, e.ID, e.Source, e.Time)
	if err != nil {
		return nil, err
	}
	env := envelope{
		Context: ctx,
		Subject: subject{ID: e.Service, Source: e.Source, Content: serviceContent{
			Environment: reference{ID: e.Environment, Source: e.Source},
			ArtifactID:  PURL(a.Group, a.Name, a.Version),
		}},
	}
	if e.Deployment != 0 || a.SourceURL != "" {
		env.CustomData = serviceData{Deployment: e.Deployment, SourceURL: a.SourceURL}
		env.CustomDataContentType = "application/json"
	}
	return marshalValid(env)
}

// MarshalJSON renders the CDEvent and validates it. Returns EINVALID when
// the type is not an environment event type, or the result does not match
// the schema.
func (e EnvironmentEvent) MarshalJSON() ([]byte, error) {
	switch e.Type {
	case EnvironmentCreated, EnvironmentModified, EnvironmentDeleted:
	default:
		return nil, deploydb.Errorf(deploydb.EINVALID, "cdevents: %s is not an environment event type (%s, %s, %s)",
			short(e.Type), EnvironmentCreated, EnvironmentModified, EnvironmentDeleted)
	}
	ctx, err := newContext(e.Type, e.ID, e.Source, e.Time)
	if err != nil {
		return nil, err
	}
	env := envelope{
		Context: ctx,
		Subject: subject{ID: e.Environment, Source: e.Source, Content: environmentContent{Name: e.Environment}},
	}
	if e.Description != "" {
		env.CustomData = environmentData{Description: e.Description}
		env.CustomDataContentType = "application/json"
	}
	return marshalValid(env)
}

func marshalValid(env envelope) ([]byte, error) {
	doc, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	if err := Validate(doc); err != nil {
		return nil, err
	}
	return doc, nil
}
