// Package apiclient is a minimal HTTPS client for kube-apiserver, built on net/http alone. The
// benchmark's seeder and its bare reference client share it, so neither depends on a
// Kubernetes library.
package apiclient

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// TrainJobsPath is the cluster-wide collection path of TrainJobs.
const TrainJobsPath = "/apis/trainer.kubeflow.org/v1alpha1/trainjobs"

// NamespacedPath returns the collection path of TrainJobs in one namespace.
func NamespacedPath(namespace string) string {
	return "/apis/trainer.kubeflow.org/v1alpha1/namespaces/" + namespace + "/trainjobs"
}

// Options are the connection settings, taken from flags that default to the variables that
// hack/with-cluster.sh exports.
type Options struct {
	Server string
	CAFile string
	Token  string
}

// RegisterFlags adds -server, -ca-file and -token to a flag set.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Server, "server", os.Getenv("TEST_APISERVER_URL"), "API server URL (default $TEST_APISERVER_URL)")
	fs.StringVar(&o.CAFile, "ca-file", os.Getenv("TEST_CA_FILE"), "PEM file of the CA that signed the serving certificate (default $TEST_CA_FILE)")
	fs.StringVar(&o.Token, "token", os.Getenv("TEST_ADMIN_TOKEN"), "bearer token (default $TEST_ADMIN_TOKEN)")
}

// Client sends requests to one API server over a pool of kept-alive HTTP/1.1 connections.
type Client struct {
	server string
	token  string
	http   *http.Client
}

// New returns a client that keeps up to connections idle connections open, so that that many
// goroutines can send requests without opening a new TLS connection each time.
func New(o Options, connections int) (*Client, error) {
	if o.Server == "" || o.CAFile == "" || o.Token == "" {
		return nil, errors.New("missing -server, -ca-file or -token (or TEST_APISERVER_URL, TEST_CA_FILE, TEST_ADMIN_TOKEN)")
	}
	pem, err := os.ReadFile(o.CAFile)
	if err != nil {
		return nil, fmt.Errorf("failed to read the CA file: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate found in %s", o.CAFile)
	}
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		MaxIdleConns:        connections,
		MaxIdleConnsPerHost: connections,
		IdleConnTimeout:     90 * time.Second,
		// An empty map turns HTTP/2 off: each request in flight gets its own HTTP/1.1
		// connection, which is then kept alive for the next request.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	return &Client{
		server: strings.TrimRight(o.Server, "/"),
		token:  o.Token,
		http:   &http.Client{Transport: transport, Timeout: 120 * time.Second},
	}, nil
}

// Do sends one request and returns the status code and the whole response body. A body that is
// not nil is sent with the given content type.
func (c *Client) Do(method, path string, body []byte, contentType string) (int, []byte, error) {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	request, err := http.NewRequest(method, c.server+path, reader)
	if err != nil {
		return 0, nil, err
	}
	request.Header.Set("Authorization", "Bearer "+c.token)
	request.Header.Set("Accept", "application/json")
	if body != nil {
		request.Header.Set("Content-Type", contentType)
	}
	response, err := c.http.Do(request)
	if err != nil {
		return 0, nil, err
	}
	defer response.Body.Close()
	// The body is read to the end even when it is not needed, so the connection can be reused.
	data, err := io.ReadAll(response.Body)
	if err != nil {
		return response.StatusCode, nil, fmt.Errorf("failed to read the response to %s %s: %w", method, path, err)
	}
	return response.StatusCode, data, nil
}

// StatusError describes a response with an unexpected status code, with the start of its body.
func StatusError(method, path string, code int, body []byte) error {
	text := strings.TrimSpace(string(body))
	if len(text) > 300 {
		text = text[:300] + "..."
	}
	return fmt.Errorf("%s %s returned %d: %s", method, path, code, text)
}
