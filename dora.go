package deploydb

// DORA is the four key metrics of DORA, and the rework rate, over the
// deployments to one environment that finished in [From, To). Each figure
// comes with the counts it was computed from; a figure with nothing to
// compute it from (no deployment, no failure) is nil.
type DORA struct {
	// Environment (and Service, when one was asked for) are what the
	// figures are of; empty when computed over deployments given.
	Environment         string              `json:"environment"`
	Service             string              `json:"service,omitempty"`
	From                Time                `json:"from"`
	To                  Time                `json:"to"`
	DeploymentFrequency DeploymentFrequency `json:"deploymentFrequency"`
	LeadTime            LeadTime            `json:"leadTime"`
	ChangeFailureRate   ChangeFailureRate   `json:"changeFailureRate"`
	RecoveryTime        RecoveryTime        `json:"recoveryTime"`
	ReworkRate          ReworkRate          `json:"reworkRate"`
}

// DeploymentFrequency is how often deployments succeed: Successful / Days.
type DeploymentFrequency struct {
	PerDay     float64 `json:"perDay"`
	Successful int     `json:"successful"`
	Days       float64 `json:"days"`
}

// LeadTime is the median, over successful deployments whose artifact
// carries commits, of the time from the oldest commit to the deployment's
// end. Without commits a deployment is counted in WithoutCommits only.
type LeadTime struct {
	MedianSeconds  *float64 `json:"medianSeconds"`
	Deployments    int      `json:"deployments"`
	WithoutCommits int      `json:"withoutCommits"`
}

// ChangeFailureRate is Failed / (Failed + Successful).
type ChangeFailureRate struct {
	Rate       *float64 `json:"rate"`
	Failed     int      `json:"failed"`
	Successful int      `json:"successful"`
}

// RecoveryTime is the median, over failed deployments, of the time from
// the failure's end to the end of the next successful deployment of the
// same service in the environment (in the window or after it). A failure
// with no success after it yet is counted in Unrecovered, not in the
// median.
type RecoveryTime struct {
	MedianSeconds *float64 `json:"medianSeconds"`
	Recovered     int      `json:"recovered"`
	Unrecovered   int      `json:"unrecovered"`
}

// ReworkRate is Rework (deployments for a rollback or a hotfix) / Total.
type ReworkRate struct {
	Rate   *float64 `json:"rate"`
	Rework int      `json:"rework"`
	Total  int      `json:"total"`
}
