-- Argo CD health check for pythonapp.dev/PythonApp.
-- Installed as the argocd-cm key resource.customizations.health.pythonapp.dev_PythonApp
-- (argocd-cm-patch.yaml embeds this file; a test fails when the two differ).
--
-- The operator reports kstatus conditions (Ready, Reconciling, Stalled, each with a reason and
-- a message) and status.observedGeneration. Without this check Argo CD calls every PythonApp
-- Healthy as soon as it exists. Argo CD runs it on gopher-lua (Lua 5.1) with only the base and
-- table libraries, so it uses neither the string nor the math library.
local hs = {}

local function condition(conditions, kind)
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function message_of(c)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return nil
end

local status = obj.status
if status == nil or status.conditions == nil or #status.conditions == 0 then
  -- Never reconciled (the operator is down, behind, or not installed): not healthy yet.
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report a status"
  return hs
end

local generation = obj.metadata.generation
local observed = status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  -- The conditions describe an older spec: wait until the operator has seen this one.
  hs.status = "Progressing"
  if observed == nil then
    hs.message = "Waiting for the operator to observe generation " .. generation
  else
    hs.message = "Waiting for the operator to observe generation " .. generation
      .. " (it last reported on generation " .. observed .. ")"
  end
  return hs
end

local ready = condition(status.conditions, "Ready")
local reconciling = condition(status.conditions, "Reconciling")
local stalled = condition(status.conditions, "Stalled")

if stalled ~= nil and stalled.status == "True" then
  -- Progress stopped and a person must act (invalid spec, rollout deadline, conflict, ...).
  hs.status = "Degraded"
  hs.message = message_of(ready) or message_of(stalled) or "Stalled"
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message_of(ready) or "Ready"
  return hs
end

if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = message_of(reconciling) or message_of(ready) or "Reconciling"
  return hs
end

hs.status = "Progressing"
hs.message = message_of(ready) or "Waiting for the operator"
return hs
