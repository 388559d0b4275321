package engine

import (
	"testing"

	"github.com/deploydb/deploydb"
)

func TestMayReport(t *testing.T) {
	t.Parallel()
	manual := &deploydb.PromotionResult{Promotion: "approval", Type: deploydb.PromotionTypeManual}
	basic := &deploydb.PromotionResult{Promotion: "smoke", Type: deploydb.PromotionTypeBasic}
	d := &deploydb.Deployment{Artifact: deploydb.Artifact{Group: "com.example", Name: "billing", Version: "1.0", PublishedBy: "alice"}}
	approval := &deploydb.Promotion{Ident: "approval", Type: deploydb.PromotionTypeManual, Attributes: map[string]any{"allowedGroup": "release-managers"}}
	strict := &deploydb.Promotion{Ident: "approval", Type: deploydb.PromotionTypeManual, Attributes: map[string]any{"allowedGroup": "release-managers", "allowSelfApproval": false}}
	alice := &deploydb.Caller{Name: "alice", Groups: []string{"release-managers"}}
	bob := &deploydb.Caller{Name: "bob", Groups: []string{"developers"}}
	tests := []struct {
		name string
		r    *deploydb.PromotionResult
		who  Approver
		want string // error code, "" for allowed
	}{
		{"BasicAnyone", basic, Approver{Caller: bob}, ""},
		{"DeployDBItself", manual, Approver{Promotion: approval}, ""},
		{"NoTokensConfigured", manual, Approver{Caller: &deploydb.Caller{Name: deploydb.Anonymous, Open: true}, Promotion: approval}, ""},
		{"InGroup", manual, Approver{Caller: alice, Promotion: approval}, ""},
		{"NotInGroup", manual, Approver{Caller: bob, Promotion: approval}, deploydb.EFORBIDDEN},
		{"AnonymousWithScope", manual, Approver{Caller: &deploydb.Caller{Name: deploydb.Anonymous, Scopes: []deploydb.Scope{deploydb.ScopePromotionsWrite}}, Promotion: approval}, deploydb.EFORBIDDEN},
		{"SelfApprovalForbidden", manual, Approver{Caller: alice, Promotion: strict}, deploydb.EFORBIDDEN},
		{"SelfApprovalByAnother", manual, Approver{Caller: &deploydb.Caller{Name: "carol", Groups: []string{"release-managers"}}, Promotion: strict}, ""},
		{"PromotionGone", manual, Approver{Caller: alice}, deploydb.EFORBIDDEN},
		{"NoLongerManual", manual, Approver{Caller: alice, Promotion: &deploydb.Promotion{Ident: "approval", Type: deploydb.PromotionTypeBasic}}, deploydb.EFORBIDDEN},
		{"ManualSinceReload", basic, Approver{Caller: bob, Promotion: &deploydb.Promotion{Ident: "smoke", Type: deploydb.PromotionTypeManual, Attributes: map[string]any{"allowedGroup": "release-managers"}}}, deploydb.EFORBIDDEN},
		{"ManualSinceReloadInGroup", basic, Approver{Caller: alice, Promotion: &deploydb.Promotion{Ident: "smoke", Type: deploydb.PromotionTypeManual, Attributes: map[string]any{"allowedGroup": "release-managers"}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := mayReport(tt.r, d, tt.who)
			if got := deploydb.ErrorCode(err); (err == nil && tt.want != "") || (err != nil && got != tt.want) {
				t.Errorf("mayReport = %v, want %q", err, tt.want)
			}
		})
	}
}
