-- One tap per display filter in the file named by PCAPSMTP_FILTERS (one filter a line), so one
-- tshark pass says which frames each filter shows, with tshark's own filter engine. Prints
-- "<line number>\t<frame,frame,...>" per filter at the end, or "<line number>\tERROR <why>"
-- at once for a filter tshark does not compile.
local index = 0
for line in io.lines(os.getenv("PCAPSMTP_FILTERS")) do
  index = index + 1
  local number = index
  local ok, tap = pcall(Listener.new, nil, line)
  if ok then
    local frames = {}
    tap.packet = function(pinfo) frames[#frames + 1] = pinfo.number end
    tap.draw = function() print(number .. "\t" .. table.concat(frames, ",")) end
  else
    print(number .. "\tERROR " .. string.gsub(tostring(tap), "%s+", " "))
  end
end
