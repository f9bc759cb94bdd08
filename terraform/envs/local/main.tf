# The order platform against a local endpoint: the embedded emulator (`streamkit emulator`)
# or LocalStack (http://localhost:4566). Every service the platform uses points at
# var.endpoint_url; credentials are dummies the emulators accept.
#
#   terraform apply -var endpoint_url=http://127.0.0.1:PORT -var lambda_zip_dir=$PWD/../../../build \
#     -var redis_url=redis://127.0.0.1:6379/0

provider "aws" {
  region                      = var.region
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  # No dynamodbstreams endpoint: the provider never calls the Streams API (mappings take
  # the stream ARN from the table), and the argument does not exist.
  endpoints {
    cloudwatch = var.endpoint_url
    dynamodb   = var.endpoint_url
    iam        = var.endpoint_url
    kms        = var.endpoint_url
    lambda     = var.endpoint_url
    logs       = var.endpoint_url
    s3         = var.endpoint_url
    ses        = var.endpoint_url
    sfn        = var.endpoint_url
    sns        = var.endpoint_url
    sqs        = var.endpoint_url
    sts        = var.endpoint_url
  }
}

module "platform" {
  source = "../../modules/order_platform"

  name_prefix    = var.name_prefix
  lambda_zip_dir = var.lambda_zip_dir

  redis_url           = var.redis_url
  notification_sender = var.notification_sender
  pickup_wait_seconds = var.pickup_wait_seconds
  # Local buckets are thrown away with the emulator, which speaks plain HTTP (and enforces a
  # TLS-only bucket policy, so there is none here).
  audit_force_destroy = true
  audit_require_tls   = false

  # Locally every record counts (tests write before the runner starts) and nothing waits.
  starting_position                  = "TRIM_HORIZON"
  maximum_batching_window_in_seconds = 0
  # The fan-out functions make five sink calls per record: 25 records stay well inside the
  # 30 s function timeout on a slow laptop. A timed-out batch loses its batched completion
  # markers, so Lambda's redelivery repeats its side effects (emails, invalidations).
  batch_size             = 25
  maximum_retry_attempts = 3
  parallelization_factor = var.parallelization_factor

  # The shortest deletion window KMS allows: local keys are thrown away with the emulator.
  kms_deletion_window_in_days = 7

  tags = { project = "streamkit", environment = "local" }
}
