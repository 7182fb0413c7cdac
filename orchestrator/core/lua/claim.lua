-- Fragment (included by record_callback.lua and claim_request.lua): claim_request(job, rid, generation)
-- A request Pixazo holds for a job that has none bound yet becomes the job's request, in the
-- same step that learns of it, so that no later step (a reconcile tick, a redelivered submit
-- task) resubmits the job. Only a job before `submitted` is claimed, only by a request an
-- operator's retry has not retired and, when `generation` is given (a late submit answer),
-- only within the generation that sent it. Returns 1 when it claimed.
local PRE_SUBMITTED = {queued = true, submitting = true, submit_unknown = true}
local function claim_request(job, rid, generation)
  local f = redis.call('HMGET', job, 'status', 'request_id', 'retired_request_ids', 'generation')
  if not PRE_SUBMITTED[f[1]] then return 0 end
  if f[2] and f[2] ~= '' then return 0 end
  if f[3] and f[3] ~= '' then
    for _, old in ipairs(cjson.decode(f[3])) do
      if old == rid then return 0 end
    end
  end
  if generation ~= '' and generation ~= (f[4] or '1') then return 0 end
  redis.call('HSET', job, 'request_id', rid, 'charge_risk', '1')
  return 1
end
