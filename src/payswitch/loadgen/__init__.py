"""The end-to-end load generator behind `payswitch bench`.

One job per module: `workload` makes unique authorizations, `tally` counts and times what came back,
`echo_server` is the bare gRPC baseline, `server_process` and `local_switch` start what is measured,
`worker` drives one load-generator process, `phase` runs a timed measurement across processes,
`cpu_time` says who used the CPU meanwhile, and `report` turns the figures into JSON and a table.
"""
