// Package server is the render node's gRPC handler over package node.
package server

import (
	"context"

	rendernodev1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/rendernode/v1"
	"github.com/fetchmesh/fetchmesh/services/render-node/internal/node"
)

// Server implements RenderNodeService.
type Server struct {
	rendernodev1.UnimplementedRenderNodeServiceServer
	node   *node.Node
	nodeID string
}

// New returns the service over n.
func New(n *node.Node, nodeID string) *Server { return &Server{node: n, nodeID: nodeID} }

// Render renders one URL under a lease.
func (s *Server) Render(ctx context.Context, req *rendernodev1.RenderRequest) (*rendernodev1.RenderResponse, error) {
	resp, err := s.node.Render(ctx, req)
	if resp != nil {
		resp.NodeId = s.nodeID
	}
	return resp, err
}
