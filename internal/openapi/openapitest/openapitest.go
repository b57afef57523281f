// Package openapitest runs the Open API imitation of package mockapi on an
// httptest.Server for the length of a test. Production code uses mockapi
// itself.
package openapitest

import (
	"net/http/httptest"
	"testing"

	"github.com/koobridge/koobridge/emulator/mockapi"
)

// Server is a mockapi.Handler served over real HTTP by an httptest.Server.
type Server struct {
	*mockapi.Handler
	srv *httptest.Server
}

// NewServer starts a Server accepting ak/sk; it is closed when the test
// ends.
func NewServer(t testing.TB, ak, sk string) *Server {
	t.Helper()
	s := &Server{Handler: mockapi.NewHandler(ak, sk)}
	s.srv = httptest.NewServer(s.Handler)
	t.Cleanup(s.Close)
	return s
}

// URL returns the base URL to give the client, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return s.srv.URL }

// Close shuts the server down, cutting open connections (a delayed
// answer in progress ends). It is safe to call more than once.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}
