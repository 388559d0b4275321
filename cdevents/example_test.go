package cdevents_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cdevents"
)

func ExampleServiceEvent() {
	ev := cdevents.ServiceEvent{
		Type:        cdevents.ServiceDeployed,
		ID:          "deploydb-event-17",
		Source:      "https://deploydb.example.com",
		Time:        time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		Service:     "billing",
		Environment: "production",
		Artifact:    deploydb.Artifact{Group: "com.example", Name: "billing", Version: "1.4.2"},
		Deployment:  31,
	}
	doc, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(doc))
	// Output:
	// {
	//   "context": {
	//     "specversion": "0.5.1",
	//     "id": "deploydb-event-17",
	//     "source": "https://deploydb.example.com",
	//     "type": "dev.cdevents.service.deployed.0.3.0",
	//     "timestamp": "2024-05-01T12:00:00.000Z"
	//   },
	//   "subject": {
	//     "id": "billing",
	//     "source": "https://deploydb.example.com",
	//     "content": {
	//       "environment": {
	//         "id": "production",
	//         "source": "https://deploydb.example.com"
	//       },
	//       "artifactId": "pkg:maven/com.example/billing@1.4.2"
	//     }
	//   },
	//   "customData": {
	//     "deployment": 31
	//   },
	//   "customDataContentType": "application/json"
	// }
}

func ExampleParse() {
	in, err := cdevents.Parse([]byte(`{
	  "context": {"specversion": "0.5.1", "id": "run-9", "source": "/ci/jenkins",
	    "type": "dev.cdevents.testsuiterun.finished.0.3.0", "timestamp": "2024-05-01T12:00:00Z"},
	  "subject": {"id": "run-9", "content": {"outcome": "failure", "environment": {"id": "staging"},
	    "testSuite": {"id": "smoke", "uri": "https://ci.example.com/run/9"}}},
	  "customData": {"service": "billing", "deployment": 31}
	}`))
	if err != nil {
		fmt.Println(deploydb.ErrorMessage(err))
		return
	}
	fmt.Println(in.Kind, in.Service, in.Environment, in.Promotion, in.Status, in.InfoURL, in.Deployment)
	// Output:
	// testsuiterun.finished billing staging smoke FAILED https://ci.example.com/run/9 31
}
