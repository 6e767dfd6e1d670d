-- Each request carries the next of many users' Bearer tokens: `wrk ... -s wrk_many_users.lua URL -- FILE START`
-- (FILE: one token per line; START: the line to begin at, so rounds of one run use different users). While
-- there are more tokens than requests no user repeats: every answer is computed, never a cached one.
-- Ends with the same WRK_JSON summary line as wrk_report.lua (one wrk thread: one list, one position).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "wrk_report.lua")

local tokens, position = {}, 0

init = function(args)
  for line in io.lines(args[1]) do
    if #line > 0 then tokens[#tokens + 1] = "Bearer " .. line end
  end
  position = tonumber(args[2] or "0") % #tokens
end

request = function()
  position = position % #tokens + 1
  return wrk.format(nil, nil, {["Authorization"] = tokens[position]})
end
