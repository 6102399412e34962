"""Platform models (AWS Lambda, EC2 behind a load balancer) sharing one interface (`base.Platform`)."""
