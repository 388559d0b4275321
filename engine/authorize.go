package engine

import (
	"fmt"

	"github.com/deploydb/deploydb"
)

// Approver is who reports a promotion result and the rules that apply:
// the promotion's configuration (nil when the configuration no longer has
// it) and the caller (nil for DeployDB's own reports, which are not
// checked).
type Approver struct {
	Caller    *deploydb.Caller
	Promotion *deploydb.Promotion
}

// mayReport is the one place that decides whether a caller may report the
// result of promotion r of deployment d. Anyone with the scope may report a
// basic or soak promotion; a manual one needs a caller in its allowedGroup,
// and, with allowSelfApproval: false, not the caller that published the
// artifact. A result is manual when its promotion was manual when the flow
// was created, or is in the configuration in force (a reload can make a
// promotion manual, never less so); the group and the self-approval rule
// are those in force. Without tokens configured (an open caller) everyone
// may.
func mayReport(r *deploydb.PromotionResult, d *deploydb.Deployment, who Approver) error {
	c := who.Caller
	nowManual := who.Promotion != nil && who.Promotion.Type == deploydb.PromotionTypeManual
	if (r.Type != deploydb.PromotionTypeManual && !nowManual) || c == nil || c.Open {
		return nil
	}
	if !nowManual || who.Promotion.AllowedGroup() == "" {
		return deploydb.Errorf(deploydb.EFORBIDDEN, "promotion %q was manual when this flow was created, and the configuration in force has no manual promotion of that name to say who may approve it: restore it, or cancel the flow", r.Promotion)
	}
	group := who.Promotion.AllowedGroup()
	if !c.InGroup(group) {
		return deploydb.Errorf(deploydb.EFORBIDDEN, "%s may not report manual promotion %q: it is not in group %s", callerName(c), r.Promotion, group)
	}
	if !who.Promotion.AllowsSelfApproval() && d.Artifact.PublishedBy != "" && d.Artifact.PublishedBy == c.Name {
		return deploydb.Errorf(deploydb.EFORBIDDEN, "%s published %s %s and may not approve it: promotion %q does not allow self-approval", callerName(c), d.Artifact.Module(), d.Artifact.Version, r.Promotion)
	}
	return nil
}

func callerName(c *deploydb.Caller) string {
	if c.Name == deploydb.Anonymous {
		return "a caller without a token"
	}
	return fmt.Sprintf("token %s", c.Name)
}

// MayReport says whether who may report the result of promotion r of
// deployment d, as a report would be judged (nil: it may): the web UI
// offers its buttons by it.
func MayReport(r *deploydb.PromotionResult, d *deploydb.Deployment, who Approver) error {
	return mayReport(r, d, who)
}
