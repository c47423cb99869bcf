-- wrk script: POST /api/v1/notifications, each request for one recipient (drawn among the 1,000
-- registered) on two channels (in_app, email).
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer bench-key"
wrk.headers["Content-Type"] = "application/json"

request = function()
  local body = string.format(
    '{"recipient_ids":["r-%d"],"title":"Répétition déplacée","body":"La répétition de Carmen commence à 20 h 15.","channels":["in_app","email"]}',
    math.random(0, 999))
  return wrk.format(nil, nil, nil, body)
end
