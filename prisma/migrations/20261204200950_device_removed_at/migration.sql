-- AlterTable
ALTER TABLE "devices" ADD COLUMN     "removed_at" TIMESTAMPTZ(3);
