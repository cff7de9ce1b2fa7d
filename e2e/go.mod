module github.com/fetchmesh/fetchmesh/e2e

go 1.26.0

replace (
	github.com/fetchmesh/fetchmesh/client => ../client
	github.com/fetchmesh/fetchmesh/gen => ../gen
	github.com/fetchmesh/fetchmesh/testweb => ../testweb
)
