-- wrk script: POST the file named by $BODY as FHIR JSON.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/fhir+json"
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
