# The order platform on AWS. Credentials and region come from the usual provider chain
# (AWS_PROFILE, environment, instance role). Configure a remote backend for real use, e.g.
#   terraform init -backend-config=backend.hcl   (with a backend "s3" block added here)

provider "aws" {
  region = var.region

  default_tags {
    tags = { project = "streamkit", environment = var.environment }
  }
}

module "platform" {
  source = "../../modules/order_platform"

  name_prefix    = var.name_prefix
  lambda_zip_dir = var.lambda_zip_dir

  # A new mapping starts at the live end of the stream; a 1 s window fills batches under load
  # at the cost of up to 1 s latency.
  starting_position                  = "LATEST"
  maximum_batching_window_in_seconds = 1
  batch_size                         = 100
  maximum_retry_attempts             = 3
  parallelization_factor             = var.parallelization_factor

  alarm_emails              = var.alarm_emails
  iterator_age_threshold_ms = var.iterator_age_threshold_ms
  log_retention_days        = 365

  # The cache: ElastiCache (redis.tf), reached from the fan-out functions in the VPC.
  redis_url              = local.redis_url
  vpc_subnet_ids         = var.subnet_ids
  vpc_security_group_ids = [aws_security_group.functions.id]

  notification_sender = var.notification_sender
  pickup_wait_seconds = var.pickup_wait_seconds
}
