-- wrk script: POST /api/v1/notifications for one recipient on two channels (in_app, email).
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer bench-key"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"recipient_ids":["r-0"],"title":"Répétition déplacée","body":"La répétition de Carmen commence à 20 h 15.","channels":["in_app","email"]}'
