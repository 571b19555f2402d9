// Package dns is quartet's cluster DNS: an in-process server that answers the
// Kubernetes DNS-Based Service Discovery specification (schema 1.1.0) for the
// cluster domain from Services, EndpointSlices and Namespaces, over UDP and
// TCP on one loopback port.
//
// records.go turns one Service and its EndpointSlices into the names it owns
// (pure); index.go keeps those records, fed by informers, for O(1) lookups;
// resolve.go answers one question from the index (pure given the index);
// server.go listens, and forwards names outside the cluster domain to the
// optional upstream servers.
package dns
