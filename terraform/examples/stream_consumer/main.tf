# One consumer of one table's stream: least-privilege role, DLQ, filtered mapping.
#   python scripts/build_lambda.py handlers/product_events -o build/product_events.zip
#   terraform init && terraform plan -var zip_path=../../../build/product_events.zip

provider "aws" {
  region = "us-east-1"
}

variable "zip_path" {
  description = "Deployment zip built by scripts/build_lambda.py."
  type        = string
}

module "orders" {
  source           = "../../modules/stream_table"
  name             = "example-orders"
  hash_key         = "pk"
  stream_view_type = "NEW_AND_OLD_IMAGES"
}

module "audit_log" {
  source           = "../../modules/stream_table"
  name             = "example-audit"
  hash_key         = "pk"
  range_key        = "sk"
  stream_view_type = null
}

module "audit" {
  source = "../../modules/stream_consumer"

  function_name = "example-audit"
  zip_path      = var.zip_path
  environment   = { AUDIT_TABLE = module.audit_log.name }

  stream_arns                        = { orders = module.orders.stream_arn }
  starting_position                  = "LATEST"
  batch_size                         = 100
  maximum_batching_window_in_seconds = 1
  maximum_retry_attempts             = 3
  maximum_record_age_in_seconds      = 3600
  bisect_batch_on_function_error     = true
  report_batch_item_failures         = true
  filter_patterns                    = [jsonencode({ eventName = ["INSERT", "MODIFY"] })]

  data_statements = [
    { sid = "WriteAudit", actions = ["dynamodb:PutItem"], resources = [module.audit_log.arn] },
  ]
}

output "dlq_url" {
  description = "Where batches that exhausted their retries are described."
  value       = module.audit.dlq_url
}
