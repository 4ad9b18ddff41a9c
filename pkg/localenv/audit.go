package localenv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// auditPolicy records the writes a test may need to attribute: scale
// writes with their request (the replica count written), and at Metadata
// level the writes to Deployments and StatefulSets and Events.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Request
  verbs: ["update", "patch"]
  resources:
  - group: "apps"
    resources: ["deployments/scale", "statefulsets/scale"]
- level: Metadata
  verbs: ["create", "update", "patch", "delete"]
  resources:
  - group: "apps"
    resources: ["deployments", "statefulsets"]
  - group: ""
    resources: ["events"]
- level: None
`

// Write is one write the API server audited.
type Write struct {
	Verb      string
	UserAgent string
	// Resource is resource[/subresource], e.g. deployments/scale.
	Resource  string
	Namespace string
	Name      string
	Code      int32
	At        time.Time
	// Replicas is the count a scale update wrote (nil for other writes).
	Replicas *int32
}

// auditEvent holds the fields of audit.k8s.io/v1 Event that Writes reads.
type auditEvent struct {
	Verb      string `json:"verb"`
	UserAgent string `json:"userAgent"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int32 `json:"code"`
	} `json:"responseStatus"`
	RequestObject *struct {
		Spec *struct {
			Replicas *int32 `json:"replicas"`
		} `json:"spec"`
	} `json:"requestObject"`
	RequestReceivedTimestamp time.Time `json:"requestReceivedTimestamp"`
}

// Writes returns the audited writes in namespace, oldest first.
func (e *Env) Writes(namespace string) ([]Write, error) {
	data, err := os.ReadFile(e.AuditLog)
	if err != nil {
		return nil, err
	}
	// The API server may be writing the last line right now.
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	var out []Write
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		var ev auditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("reading the audit log: %w", err)
		}
		if ev.ObjectRef == nil || ev.ObjectRef.Namespace != namespace {
			continue
		}
		w := Write{Verb: ev.Verb, UserAgent: ev.UserAgent, Resource: ev.ObjectRef.Resource, Namespace: ev.ObjectRef.Namespace,
			Name: ev.ObjectRef.Name, At: ev.RequestReceivedTimestamp}
		if ev.ObjectRef.Subresource != "" {
			w.Resource += "/" + ev.ObjectRef.Subresource
		}
		if ev.ResponseStatus != nil {
			w.Code = ev.ResponseStatus.Code
		}
		if ev.RequestObject != nil && ev.RequestObject.Spec != nil && ev.ObjectRef.Subresource == "scale" {
			w.Replicas = ev.RequestObject.Spec.Replicas
		}
		out = append(out, w)
	}
	return out, sc.Err()
}
