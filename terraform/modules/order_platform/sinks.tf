# The sinks the platform's use cases name: the audit archive (S3), the notification sender
# (SES), and the fulfilment workflow (Step Functions). The cache (Redis/ElastiCache) is given
# by its URL (var.redis_url): envs/aws creates the ElastiCache group, envs/local uses a local
# redis-server.

locals {
  audit_prefix = "audit"
}

# --- audit archive (S3) --------------------------------------------------------------------------

resource "aws_s3_bucket" "audit" {
  #checkov:skip=CKV_AWS_18:Server access logging needs a second (log) bucket per deployment; the archive is write-only for the functions, and CloudTrail data events are the deployer's choice.
  #checkov:skip=CKV_AWS_144:Cross-region replication is a deployment decision (a second region and bucket); versioning and KMS protect this copy.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to new audit objects; Athena queries them in place.
  bucket_prefix = "${var.name_prefix}order-audit-"
  force_destroy = var.audit_force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_versioning" "audit" {
  bucket = aws_s3_bucket.audit.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "audit" {
  bucket = aws_s3_bucket.audit.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.platform.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "audit" {
  bucket                  = aws_s3_bucket.audit.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "audit" {
  bucket = aws_s3_bucket.audit.id
  rule {
    id     = "expire-old-versions"
    status = "Enabled"
    filter {
      prefix = "${local.audit_prefix}/"
    }
    # Every change is written once (conditional put), so old versions only appear if someone
    # overwrites an object; keep them for the retention period anyway.
    noncurrent_version_expiration {
      noncurrent_days = var.audit_noncurrent_version_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

# Only TLS requests, ever.
data "aws_iam_policy_document" "audit_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.audit.arn, "${aws_s3_bucket.audit.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "audit" {
  bucket     = aws_s3_bucket.audit.id
  policy     = data.aws_iam_policy_document.audit_bucket.json
  depends_on = [aws_s3_bucket_public_access_block.audit]
}

# --- notifications (SES) -----------------------------------------------------------------------

# On AWS the address must be confirmed (SES mails a link) before SendEmail accepts it as the
# source, and an account in the SES sandbox can only send to verified recipients: see
# "Deploy to AWS" in the README. The emulator verifies it at once.
resource "aws_ses_email_identity" "sender" {
  email = var.notification_sender
}

# --- fulfilment (Step Functions) ------------------------------------------------------------------

data "aws_iam_policy_document" "sfn_assume" {
  statement {
    sid     = "StepFunctionsAssumeRole"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "fulfilment" {
  name               = "${var.name_prefix}fulfilment-sfn"
  assume_role_policy = data.aws_iam_policy_document.sfn_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "fulfilment" {
  # The DynamoDB service integration's one write: the conditional SHIPPED update.
  statement {
    sid       = "ShipOrders"
    actions   = ["dynamodb:UpdateItem"]
    resources = [module.orders.arn]
  }
  statement {
    sid       = "DecryptWithPlatformKey"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.platform.arn]
  }
}

resource "aws_iam_role_policy" "fulfilment" {
  name   = "${var.name_prefix}fulfilment-least-privilege"
  role   = aws_iam_role.fulfilment.id
  policy = data.aws_iam_policy_document.fulfilment.json
}

resource "aws_sfn_state_machine" "fulfilment" {
  #checkov:skip=CKV_AWS_284:X-Ray tracing of the two-state machine adds cost and nothing the execution history does not show; the functions are traced.
  #checkov:skip=CKV_AWS_285:Execution logging needs account-wide logs:*LogDelivery permissions on "*"; the execution history (90 days) records every state.
  name     = "${var.name_prefix}fulfilment"
  role_arn = aws_iam_role.fulfilment.arn
  definition = templatefile("${path.module}/fulfilment.asl.json", {
    orders_table = module.orders.name
  })
  tags = var.tags
}
