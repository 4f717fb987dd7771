"""The small part of AWS the agent needs, over plain HTTP: Signature Version 4, where the agent's
own identity comes from, and STS AssumeRole. No AWS SDK (design card: no boto3)."""
