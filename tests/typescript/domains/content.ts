/** Child-aware content: every list takes the child whose age and interests pick the items. */
import { type ApiClient, type Body, describeError } from "../client";
import type { operations } from "../generated/api";

interface AgeRanged { id: string; min_age: number; max_age: number; tags: string[] }

function ageLabel(item: AgeRanged): string {
  return `${item.id}: ages ${item.min_age}-${item.max_age} [${item.tags.join(", ")}]`;
}

export async function affirmations(api: ApiClient, childId: string): Promise<string[]> {
  const { data, error } = await api.GET("/v1/affirmations", { params: { query: { childId } } });
  if (error) throw new Error(describeError(error));
  const items: Body<"listAffirmations", 200> = data;
  return items.map((item) => `${item.text} (${ageLabel(item)})`);
}

export async function subjects(api: ApiClient, childId: string): Promise<string[]> {
  const { data, error } = await api.GET("/v1/subjects", { params: { query: { childId } } });
  if (error) throw new Error(describeError(error));
  const items: Body<"listSubjects", 200> = data;
  return items.map((item) => `${item.name} (${ageLabel(item)})`);
}

export async function flashcards(
  api: ApiClient,
  childId: string,
  subjectId?: string,
  difficulty?: "easy" | "medium" | "hard",
): Promise<string[]> {
  const query: NonNullable<operations["listFlashcards"]["parameters"]["query"]> = { childId };
  if (subjectId !== undefined) query.subjectId = subjectId;
  if (difficulty !== undefined) query.difficulty = difficulty;
  const { data, error } = await api.GET("/v1/flashcards", { params: { query } });
  if (error) throw new Error(describeError(error));
  const cards: Body<"listFlashcards", 200> = data;
  return cards.map((card) => `[${card.subject_id}/${card.difficulty}] ${card.front} -> ${card.back} (${ageLabel(card)})`);
}

export async function dailyChores(api: ApiClient, childId: string): Promise<string[]> {
  const { data, error } = await api.GET("/v1/chores/daily", { params: { query: { childId } } });
  if (error) throw new Error(describeError(error));
  const chores: Body<"listDailyChores", 200> = data;
  return chores.map((chore) => `${chore.title}: ${chore.description} (${ageLabel(chore)})`);
}

export async function outdoorActivities(api: ApiClient, childId: string, isDaily = false): Promise<string[]> {
  const { data, error } = await api.GET("/v1/outdoor/activities", {
    params: { query: { childId, isDaily } },
  });
  if (error) throw new Error(describeError(error));
  const activities: Body<"listOutdoorActivities", 200> = data;
  return activities.map((activity) => `${activity.title}: ${activity.description} (${ageLabel(activity)})`);
}
