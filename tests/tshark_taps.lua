-- One tap per display filter in the file named by PCAPSMTP_FILTERS (one filter a line), so one
-- tshark pass says which frames each filter shows, with tshark's own filter engine (a tap's
-- filter is compiled and applied like -Y's). Writes "<line number>\t<frame,frame,...>" per
-- filter at the end, or "<line number>\tERROR <why>" for a filter tshark does not compile,
-- to the file named by PCAPSMTP_TAPS_OUT, so that tshark's own output (-T fields, -Y) stays
-- apart on stdout.
local out = assert(io.open(os.getenv("PCAPSMTP_TAPS_OUT"), "w"))
local index = 0
for line in io.lines(os.getenv("PCAPSMTP_FILTERS")) do
  index = index + 1
  local number = index
  local ok, tap = pcall(Listener.new, nil, line)
  if ok then
    local frames = {}
    tap.packet = function(pinfo) frames[#frames + 1] = pinfo.number end
    tap.draw = function()
      out:write(number .. "\t" .. table.concat(frames, ",") .. "\n")
      out:flush()
    end
  else
    out:write(number .. "\tERROR " .. string.gsub(tostring(tap), "%s+", " ") .. "\n")
    out:flush()
  end
end
