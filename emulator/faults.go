package emulator

import (
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
)

// openAPITimeout is how long a "timeout" fault holds a request before
// cutting the connection without an answer.
const openAPITimeout = 60 * time.Second

// Faults returns the faults switched on.
func (e *Emulator) Faults() Faults {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.faults
}

// SetFaults switches faults on (the zero Faults switches them off). The
// Open API faults apply to the next OpenAPICount requests (all when 0),
// the license Open API's to the next LicenseAPICount license requests,
// and UploadFailures counts afresh; the calling-side faults apply to every
// attempt from now on.
func (e *Emulator) SetFaults(f Faults) {
	e.mu.Lock()
	e.faults = f
	e.mu.Unlock()
	e.openapi.SetFault(openAPIFault(f))
	e.openapi.SetLicenseFault(mockapi.Fault{Status: f.LicenseAPIStatus, Code: f.LicenseAPICode, Delay: f.LicenseAPILatency, Count: f.LicenseAPICount})
	e.openapi.SetUploadFailures(f.UploadFailures, f.UploadFailureCode)
	e.openapi.SetUsageFailRate(f.UsageFailRate)
}

// openAPIFault maps the Open API side of f to the imitation's fault.
func openAPIFault(f Faults) mockapi.Fault {
	switch {
	case f.OpenAPITimeout:
		return mockapi.Fault{Delay: openAPITimeout, Drop: true, Count: f.OpenAPICount}
	case f.OpenAPIStatus != 0 || f.OpenAPILatency > 0:
		return mockapi.Fault{Status: f.OpenAPIStatus, Delay: f.OpenAPILatency, Count: f.OpenAPICount}
	}
	return mockapi.Fault{}
}
