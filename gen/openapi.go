// Package gen holds the code generated from proto/ by `make generate`. Do
// not edit anything under go/ or openapi/: change the protos and regenerate.
package gen

import _ "embed"

// GatewayOpenAPI is the OpenAPI (Swagger 2.0) document of the public REST
// API, generated from fetchmesh/gateway/v1/gateway.proto.
//
//go:embed openapi/fetchmesh/gateway/v1/gateway.swagger.json
var GatewayOpenAPI []byte
